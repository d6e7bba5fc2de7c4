"""Data models of the sample shop API."""

from datetime import datetime

from pydantic import BaseModel, EmailStr, Field


class User(BaseModel):
    id: int
    email: EmailStr
    name: str = Field(min_length=1, max_length=100)
    created_at: datetime


class Item(BaseModel):
    id: int
    owner_id: int
    title: str
    price_cents: int = Field(ge=0)
