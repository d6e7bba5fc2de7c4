"""The sample shop API."""

from fastapi import Depends, FastAPI, HTTPException

from .models import Item, User

app = FastAPI(title="Sample shop")

USERS: dict[int, User] = {}
ITEMS: dict[int, Item] = {}


def get_user(user_id: int) -> User:
    user = USERS.get(user_id)
    if user is None:
        raise HTTPException(status_code=404, detail="user not found")
    return user


@app.get("/users/{user_id}")
def read_user(user=Depends(get_user)):
    return user


@app.get("/users/{user_id}/items")
def list_items(user_id: int):
    return [item for item in ITEMS.values() if item.owner_id == user_id]


@app.get("/health")
async def health(request):
    agent = request.headers.get("user-agent", "")
    client = request.client.host if request.client else None
    return {"ok": True, "client": client, "agent": agent}


def count_items(user_id: int) -> int:
