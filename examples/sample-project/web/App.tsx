import { useEffect, useState } from "react";
import type { User } from "./types";

export function App() {
  const [users, setUsers] = useState<User[]>([]);
  useEffect(() => {
    fetch("/users").then((r) => r.json()).then(setUsers);
  }, []);
  return <ul>{users.map((u) => <li key={u.id}>{u.name}</li>)}</ul>;
}
