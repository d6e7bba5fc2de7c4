"""Domain models of the sample application."""

from pydantic import BaseModel, EmailStr


class User(BaseModel):
    """A registered user."""

    id: int
    name: str
    email: EmailStr
    bio: str = ""


class Item(BaseModel):
    """Something a user owns."""

    id: int
    title: str
    owner_id: int


def display_name(user: User) -> str:
    """The name shown in the interface."""
    return user.name.title()
