"""The sample application: one FastAPI app with a health endpoint."""

from fastapi import FastAPI

from app.models import User

app = FastAPI(title="Sample")


@app.get("/health")
def health() -> dict[str, str]:
    return {"status": "ok"}


@app.get("/me")
def me() -> User:
    return User(id=1, name="ada", email="ada@example.com")
