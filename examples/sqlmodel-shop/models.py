"""SQLModel shop: customers place orders of products; products have reviews and tags.

Some keys state their ON DELETE rule with Field(ondelete=...), some only through
the ORM (sa_relationship_kwargs cascade, cascade_delete=True), and one says
nothing at all.
"""

from datetime import datetime, timezone
from typing import List, Optional

from sqlmodel import Field, Relationship, SQLModel


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class ProductTagLink(SQLModel, table=True):
    # Link table (HeroTeamLink style): table name "producttaglink".
    product_id: Optional[int] = Field(
        default=None, foreign_key="product.id", primary_key=True
    )
    tag_id: Optional[int] = Field(default=None, foreign_key="tag.id", primary_key=True)


class Category(SQLModel, table=True):
    id: Optional[int] = Field(default=None, primary_key=True)
    name: str


class Tag(SQLModel, table=True):
    id: Optional[int] = Field(default=None, primary_key=True)
    name: str

    products: List["Product"] = Relationship(
        back_populates="tags", link_model=ProductTagLink
    )


class Product(SQLModel, table=True):
    id: Optional[int] = Field(default=None, primary_key=True)
    name: str
    price: float
    # Optional and no ondelete: the database default would block deleting a category.
    category_id: Optional[int] = Field(default=None, foreign_key="category.id", index=True)

    category: Optional[Category] = Relationship()
    tags: List[Tag] = Relationship(back_populates="products", link_model=ProductTagLink)
    reviews: List["Review"] = Relationship(back_populates="product", cascade_delete=True)


class Customer(SQLModel, table=True):
    id: Optional[int] = Field(default=None, primary_key=True)
    name: str
    email: str

    orders: List["Order"] = Relationship(
        back_populates="customer",
        sa_relationship_kwargs={"cascade": "save-update, merge"},
    )


class Order(SQLModel, table=True):
    id: Optional[int] = Field(default=None, primary_key=True)
    order_date: datetime = Field(default_factory=utcnow)
    customer_id: int = Field(foreign_key="customer.id", ondelete="CASCADE")

    customer: Optional[Customer] = Relationship(back_populates="orders")
    items: List["OrderItem"] = Relationship(
        back_populates="order",
        sa_relationship_kwargs={"cascade": "all, delete-orphan"},
    )


class OrderItem(SQLModel, table=True):
    id: Optional[int] = Field(default=None, primary_key=True)
    quantity: int
    price: float
    order_id: int = Field(foreign_key="order.id")
    product_id: int = Field(foreign_key="product.id", ondelete="RESTRICT")

    order: Optional[Order] = Relationship(back_populates="items")
    product: Optional[Product] = Relationship()


class Review(SQLModel, table=True):
    id: Optional[int] = Field(default=None, primary_key=True)
    rating: int
    body: str = ""
    product_id: int = Field(foreign_key="product.id")
    customer_id: Optional[int] = Field(
        default=None, foreign_key="customer.id", ondelete="SET NULL"
    )

    product: Optional[Product] = Relationship(back_populates="reviews")
