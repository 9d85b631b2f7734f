"""Classic declarative models: authors write posts; readers leave threaded comments.

Comments form a tree through a self-referential relationship whose backref is
configured with remote_side; deleting a comment deletes its replies in the ORM
(cascade="all, delete-orphan") but not in the database unless the migration
says so.
"""

from sqlalchemy import (
    Column,
    DateTime,
    ForeignKey,
    ForeignKeyConstraint,
    Integer,
    String,
    Text,
    func,
)
from sqlalchemy.orm import backref, declarative_base, relationship

Base = declarative_base()


class Author(Base):
    __tablename__ = "authors"
    id = Column(Integer, primary_key=True)
    name = Column(String(100), nullable=False)


class Post(Base):
    __tablename__ = "posts"
    id = Column(Integer, primary_key=True)
    title = Column(String(200), nullable=False)
    body = Column(Text)
    author_id = Column(
        Integer, ForeignKey("authors.id", ondelete="CASCADE"), nullable=False
    )

    comments = relationship("Comment", backref="post", cascade="all, delete-orphan")


class Comment(Base):
    __tablename__ = "comments"
    id = Column(Integer, primary_key=True)
    body = Column(Text, nullable=False)
    post_id = Column(Integer, ForeignKey("posts.id"), nullable=False)
    parent_id = Column(Integer, ForeignKey("comments.id"))

    replies = relationship(
        "Comment",
        backref=backref("parent", remote_side=[id]),
        cascade="all, delete-orphan",
    )


class Revision(Base):
    __tablename__ = "revisions"
    id = Column(Integer, primary_key=True)
    post_id = Column(Integer, nullable=False)
    editor_id = Column(Integer)
    saved_at = Column(DateTime, server_default=func.now())
    body = Column(Text)

    __table_args__ = (
        ForeignKeyConstraint(
            ["post_id"],
            ["posts.id"],
            ondelete="CASCADE",
            name="fk_revisions_post_id",
        ),
        ForeignKeyConstraint(["editor_id"], ["authors.id"]),
    )
