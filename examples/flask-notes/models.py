"""Flask-SQLAlchemy models: users own notes; notes carry tags and attachments.

The intent to delete a user's notes together with the user lives only on the
ORM relationship (cascade="all, delete-orphan"); Alembic's autogenerate does
not turn that into ON DELETE CASCADE.
"""

from datetime import datetime, timezone

from flask_sqlalchemy import SQLAlchemy

db = SQLAlchemy()


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


# Many-to-many association between notes and tags.
note_tags = db.Table(
    "note_tags",
    db.Column("note_id", db.Integer, db.ForeignKey("notes.id"), primary_key=True),
    db.Column("tag_id", db.Integer, db.ForeignKey("tags.id"), primary_key=True),
)


class User(db.Model):
    __tablename__ = "users"
    id = db.Column(db.Integer, primary_key=True)
    email = db.Column(db.String(254), unique=True, index=True)
    password_hash = db.Column(db.String(256))
    confirmed = db.Column(db.Boolean, default=False)
    avatar_hash = db.Column(db.String(32))
    created_date = db.Column(db.DateTime(), default=utcnow)
    updated_date = db.Column(db.DateTime(), default=utcnow)

    notes = db.relationship(
        "Note", backref="author", lazy="dynamic", cascade="all, delete-orphan"
    )


class Tag(db.Model):
    __tablename__ = "tags"
    id = db.Column(db.Integer, primary_key=True)
    name = db.Column(db.String(64), unique=True, nullable=False)


class Note(db.Model):
    __tablename__ = "notes"
    id = db.Column(db.Integer, primary_key=True)
    body = db.Column(db.Text)
    created_date = db.Column(db.DateTime(), default=utcnow)
    author_id = db.Column(db.Integer, db.ForeignKey("users.id"))

    tags = db.relationship("Tag", secondary=note_tags, backref="notes")


class NoteAttachment(db.Model):
    # No __tablename__: Flask-SQLAlchemy names the table "note_attachment".
    id = db.Column(db.Integer, primary_key=True)
    filename = db.Column(db.String(255), nullable=False)
    note_id = db.Column(db.Integer, db.ForeignKey("notes.id"), nullable=False)
    uploaded_by_id = db.Column(db.Integer, db.ForeignKey("users.id"))
