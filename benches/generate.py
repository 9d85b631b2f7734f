#!/usr/bin/env python3
"""Write a large, realistic Alembic project for the benchmark (stdlib only, deterministic).

    python3 benches/generate.py OUT [--migrations 5000] [--model-files 500] [--seed 7]

OUT gets alembic.ini, migrations/env.py, migrations/versions/ (a linear revision chain) and an
app/models package whose files are written in the four model styles in turn: classic
declarative `Column`, typed `Mapped`/`mapped_column`, Flask-SQLAlchemy `db.Column` and SQLModel
`Field`. The history is what years of `alembic revision --autogenerate` leave behind: tables
created (Alembic's one-line shapes and black-formatted ones, inline `sa.ForeignKey`), keys added
later (`op.create_foreign_key` positional and keyword-only, `batch_op.create_foreign_key` in
batch blocks), and mostly revisions without any foreign key (add_column, alter_column,
create_index, unique constraints, data fixes).

Prints one JSON object (also written to OUT/bench-manifest.json): file counts, bytes and
`fk_sites`, the number of foreign key calls inside upgrade() functions, which is what
`fix-migrations --all --format json` must report in `foreign_keys`.
"""

import argparse
import json
import random
import sys
from pathlib import Path

STYLES = ("declarative", "typed", "flask", "sqlmodel")

NOUNS = [
    "account", "invoice", "shipment", "ticket", "project", "document", "payment", "course",
    "booking", "article", "device", "campaign", "contract", "vehicle", "patient", "listing",
]
PLAIN_TYPES = [
    ("String(length=120)", "String(120)", "str"),
    ("Text()", "Text", "str"),
    ("DateTime()", "DateTime", "datetime"),
    ("Boolean()", "Boolean", "bool"),
    ("Integer()", "Integer", "int"),
    ("Numeric(precision=12, scale=2)", "Numeric(12, 2)", "float"),
]
PLAIN_NAMES = [
    "title", "description", "reference", "notes", "created_at", "updated_at", "archived_at",
    "is_active", "is_public", "priority", "position", "amount", "external_id", "summary",
    "slug", "email", "phone", "country", "currency", "score", "version", "locale", "label",
]


def camel(name):
    return "".join(part.capitalize() for part in name.split("_"))


class Table:
    def __init__(self, file_index, name, cls):
        self.file_index = file_index
        self.name = name
        self.cls = cls
        # (name, sa_type, model_type, py_type, nullable)
        self.columns = [("id", "Integer()", "Integer", "int", False)]
        # (column, referent_table, nullable, model_ondelete)
        self.fks = []
        self.relationships = []  # (attr, target_cls, kwargs)
        self.late_plain = []  # columns added by later revisions
        self.late_fks = []


def plan_schema(rng, model_files):
    """Four tables per model file: an owner, a lookup, a dependent and its lines."""
    files = []
    for i in range(model_files):
        noun = NOUNS[i % len(NOUNS)]
        prefix = f"m{i:03d}"
        owner = Table(i, f"{prefix}_{noun}s", f"M{i:03d}{camel(noun)}")
        lookup = Table(i, f"{prefix}_{noun}_statuses", f"M{i:03d}{camel(noun)}Status")
        child = Table(i, f"{prefix}_{noun}_items", f"M{i:03d}{camel(noun)}Item")
        lines = Table(i, f"{prefix}_{noun}_item_lines", f"M{i:03d}{camel(noun)}ItemLine")
        tables = [owner, lookup, child, lines]
        for t in tables:
            for name in rng.sample(PLAIN_NAMES, rng.randint(8, 14)):
                sa_type, model_type, py_type = rng.choice(PLAIN_TYPES)
                t.columns.append((name, sa_type, model_type, py_type, rng.random() < 0.6))
        lookup.columns.append(("code", "String(length=32)", "String(32)", "str", False))
        earlier = rng.randrange(i) if i else None
        if earlier is not None:
            ref = f"m{earlier:03d}_{NOUNS[earlier % len(NOUNS)]}s"
            owner.fks.append(("created_by_id", ref, True, None))
        child.fks.append((f"{noun}_id", owner.name, False, None))
        child.fks.append(("status_id", lookup.name, False, None))
        child.fks.append(("reviewer_id", owner.name, True, "SET NULL" if i % 5 == 0 else None))
        lines.fks.append(("item_id", child.name, False, "CASCADE" if i % 3 == 0 else None))
        if rng.random() < 0.5:
            lines.fks.append(("approved_by_id", owner.name, True, None))
        cascade = rng.choice(["all, delete-orphan", "all, delete", None, "save-update, merge"])
        owner.relationships.append((f"{noun}_items", child.cls, cascade, f"{noun}_id"))
        child.relationships.append(("lines", lines.cls, "all, delete-orphan", "item_id"))
        for t in tables:
            for name in rng.sample(["legacy_code", "flags", "deleted_at", "sort_key"], 2):
                sa_type, model_type, py_type = rng.choice(PLAIN_TYPES)
                t.late_plain.append((name, sa_type, model_type, py_type, True))
        # Keys added after the tables exist, pointing at this file's or an earlier file's owner.
        target_file = rng.randrange(i + 1)
        target = f"m{target_file:03d}_{NOUNS[target_file % len(NOUNS)]}s"
        child.late_fks.append(("assigned_to_id", target, True, None))
        lines.late_fks.append(("owner_id", owner.name, True, None))
        owner.late_fks.append(("parent_id", owner.name, True, None))
        files.append(tables)
    return files


# ---- models ----------------------------------------------------------------------------------

def model_column(style, col, fk=None):
    name, _sa_type, model_type, py_type, nullable = col
    pk = name == "id"
    fk_args = ""
    if fk:
        ref, ondelete = fk
        fk_args = f'"{ref}.id"' + (f', ondelete="{ondelete}"' if ondelete else "")
    if style == "declarative":
        parts = ["Integer" if fk else model_type]
        if fk:
            parts.append(f"ForeignKey({fk_args})")
        parts.append("primary_key=True" if pk else f"nullable={nullable}")
        if name.endswith("_id") or name == "created_at":
            parts.append("index=True")
        return f"    {name} = Column({', '.join(parts)})"
    if style == "flask":
        parts = ["db.Integer" if fk else f"db.{model_type}"]
        if fk:
            parts.append(f"db.ForeignKey({fk_args})")
        parts.append("primary_key=True" if pk else f"nullable={nullable}")
        return f"    {name} = db.Column({', '.join(parts)})"
    if style == "typed":
        py = "int" if fk else py_type
        ann = f"Optional[{py}]" if nullable and not pk else py
        if pk:
            return f"    {name}: Mapped[int] = mapped_column(primary_key=True)"
        if fk:
            return f"    {name}: Mapped[{ann}] = mapped_column(ForeignKey({fk_args}))"
        return f"    {name}: Mapped[{ann}] = mapped_column({model_type})"
    # sqlmodel
    py = "int" if fk else py_type
    if pk:
        return f"    {name}: Optional[int] = Field(default=None, primary_key=True)"
    ann = f"Optional[{py}]" if nullable else py
    args = []
    if nullable:
        args.append("default=None")
    if fk:
        ref, ondelete = fk
        args.append(f'foreign_key="{ref}.id"')
        if ondelete:
            args.append(f'ondelete="{ondelete}"')
    if name.endswith("_id"):
        args.append("index=True")
    if not args:
        return f"    {name}: {ann}"
    return f"    {name}: {ann} = Field({', '.join(args)})"


def model_relationship(style, attr, target, cascade, fk_col):
    if style == "sqlmodel":
        if cascade and "delete" in cascade:
            return f'    {attr}: List["{target}"] = Relationship(cascade_delete=True)'
        return f'    {attr}: List["{target}"] = Relationship()'
    kwargs = []
    if cascade:
        kwargs.append(f'cascade="{cascade}"')
    if fk_col == "item_id":
        kwargs.append("passive_deletes=True")
    fn = "db.relationship" if style == "flask" else "relationship"
    call = f'{fn}("{target}"' + "".join(f", {k}" for k in kwargs) + ")"
    if style == "typed":
        return f'    {attr}: Mapped[List["{target}"]] = {call}'
    return f"    {attr} = {call}"


MODEL_HEADERS = {
    "declarative": (
        "from sqlalchemy import Boolean, Column, DateTime, ForeignKey, Integer, Numeric, "
        "String, Text\nfrom sqlalchemy.orm import relationship\n\nfrom .base import Base\n"
    ),
    "typed": (
        "from datetime import datetime\nfrom typing import List, Optional\n\n"
        "from sqlalchemy import Boolean, DateTime, ForeignKey, Integer, Numeric, String, Text\n"
        "from sqlalchemy.orm import Mapped, mapped_column, relationship\n\n"
        "from .base import TypedBase\n"
    ),
    "flask": "from .extensions import db\n",
    "sqlmodel": (
        "from datetime import datetime\nfrom typing import List, Optional\n\n"
        "from sqlmodel import Field, Relationship, SQLModel\n"
    ),
}


def model_file(style, tables):
    out = [f'"""{tables[0].cls[4:]} domain ({style} models)."""\n', MODEL_HEADERS[style], "\n"]
    for t in tables:
        base = {
            "declarative": "Base",
            "typed": "TypedBase",
            "flask": "db.Model",
            "sqlmodel": "SQLModel, table=True",
        }[style]
        out.append(f"\nclass {t.cls}({base}):\n")
        out.append(f'    """{t.name.replace("_", " ")}."""\n\n')
        out.append(f'    __tablename__ = "{t.name}"\n\n')
        fks = {c: (ref, ondelete) for c, ref, _n, ondelete in t.fks + t.late_fks}
        for col in t.columns + t.late_plain:
            out.append(model_column(style, col, None) + "\n")
        for c, _ref, nullable, _ondelete in t.fks + t.late_fks:
            out.append(model_column(style, (c, "Integer()", "Integer", "int", nullable), fks[c]) + "\n")
        for attr, target, cascade, fk_col in t.relationships:
            out.append(model_relationship(style, attr, target, cascade, fk_col) + "\n")
        out.append("\n    def __repr__(self):\n")
        out.append(f'        return f"<{t.cls} {{self.id}}>"\n')
    return "".join(out)


# ---- migrations ------------------------------------------------------------------------------

HEADER = '''"""{message}

Revision ID: {rev}
Revises: {down_doc}
Create Date: {date}

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '{rev}'
down_revision: Union[str, Sequence[str], None] = {down}
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
'''

BLACK_HEADER = '''"""{message}

Revision ID: {rev}
Revises: {down_doc}
Create Date: {date}

"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "{rev}"
down_revision: Union[str, Sequence[str], None] = {down}
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
'''


def q(text, black):
    return f'"{text}"' if black else f"'{text}'"


def create_table(t, black, inline):
    """Alembic's create_table; returns (text, fk_calls)."""
    fks = {c: ref for c, ref, _n, _o in t.fks}
    cols = t.columns + [(c, "Integer()", "Integer", "int", n) for c, _r, n, _o in t.fks]
    lines = []
    calls = 0
    if black:
        lines.append("    op.create_table(")
        lines.append(f"        {q(t.name, True)},")
        for name, sa_type, _m, _p, nullable in cols:
            if inline and name in fks:
                lines += [
                    "        sa.Column(", f"            {q(name, True)},", "            sa.Integer(),",
                    f"            sa.ForeignKey({q(fks[name] + '.id', True)}),",
                    f"            nullable={nullable},", "        ),",
                ]
                calls += 1
            else:
                lines.append(f"        sa.Column({q(name, True)}, sa.{sa_type}, nullable={nullable}),")
        for c, ref, _n, _o in t.fks:
            if inline:
                continue
            lines += [
                "        sa.ForeignKeyConstraint(", f"            [{q(c, True)}],",
                f"            [{q(ref + '.id', True)}],", "        ),",
            ]
            calls += 1
        lines.append(f"        sa.PrimaryKeyConstraint({q('id', True)}),")
        lines.append("    )")
    else:
        lines.append(f"    op.create_table('{t.name}',")
        for name, sa_type, _m, _p, nullable in cols:
            lines.append(f"    sa.Column('{name}', sa.{sa_type}, nullable={nullable}),")
        for c, ref, _n, _o in t.fks:
            lines.append(f"    sa.ForeignKeyConstraint(['{c}'], ['{ref}.id'], ),")
            calls += 1
        lines.append("    sa.PrimaryKeyConstraint('id')")
        lines.append("    )")
    for c, _ref, _n, _o in t.fks:
        ix = f"ix_{t.name}_{c}"
        lines.append(f"    op.create_index({q(ix, black)}, {q(t.name, black)}, [{q(c, black)}], unique=False)")
    return "\n".join(lines), calls


def fk_add(rng, t, col, ref, black):
    """A key added to an existing table: (upgrade lines, downgrade lines, fk_calls)."""
    shape = rng.random()
    name = f"fk_{t.name}_{col}_{ref}"
    if shape < 0.35:  # autogenerate, unnamed (PostgreSQL style)
        up = [
            f"    op.add_column({q(t.name, black)}, sa.Column({q(col, black)}, sa.Integer(), nullable=True))",
            f"    op.create_foreign_key(None, {q(t.name, black)}, {q(ref, black)}, [{q(col, black)}], [{q('id', black)}])",
        ]
        down = [
            f"    op.drop_constraint(None, {q(t.name, black)}, type_={q('foreignkey', black)})",
            f"    op.drop_column({q(t.name, black)}, {q(col, black)})",
        ]
    elif shape < 0.55:  # named through op.f()
        up = [
            f"    op.add_column({q(t.name, black)}, sa.Column({q(col, black)}, sa.Integer(), nullable=True))",
            f"    op.create_foreign_key(op.f({q(name, black)}), {q(t.name, black)}, {q(ref, black)}, [{q(col, black)}], [{q('id', black)}])",
        ]
        down = [
            f"    op.drop_constraint(op.f({q(name, black)}), {q(t.name, black)}, type_={q('foreignkey', black)})",
            f"    op.drop_column({q(t.name, black)}, {q(col, black)})",
        ]
    elif shape < 0.7:  # hand-written, keyword-only, black-formatted
        up = [
            f"    op.add_column({q(t.name, True)}, sa.Column({q(col, True)}, sa.Integer(), nullable=True))",
            "    op.create_foreign_key(",
            f"        constraint_name={q(name, True)},",
            f"        source_table={q(t.name, True)},",
            f"        referent_table={q(ref, True)},",
            f"        local_cols=[{q(col, True)}],",
            f"        remote_cols=[{q('id', True)}],",
            "    )",
        ]
        down = [
            f"    op.drop_constraint({q(name, True)}, {q(t.name, True)}, type_={q('foreignkey', True)})",
            f"    op.drop_column({q(t.name, True)}, {q(col, True)})",
        ]
    else:  # SQLite batch mode
        up = [
            f"    with op.batch_alter_table({q(t.name, black)}, schema=None) as batch_op:",
            f"        batch_op.add_column(sa.Column({q(col, black)}, sa.Integer(), nullable=True))",
            f"        batch_op.create_index(batch_op.f({q('ix_' + t.name + '_' + col, black)}), [{q(col, black)}], unique=False)",
            f"        batch_op.create_foreign_key({q(name, black)}, {q(ref, black)}, [{q(col, black)}], [{q('id', black)}])",
            "",
        ]
        down = [
            f"    with op.batch_alter_table({q(t.name, black)}, schema=None) as batch_op:",
            f"        batch_op.drop_constraint({q(name, black)}, type_={q('foreignkey', black)})",
            f"        batch_op.drop_index(batch_op.f({q('ix_' + t.name + '_' + col, black)}))",
            f"        batch_op.drop_column({q(col, black)})",
            "",
        ]
    return up, down, 1


def plain_ops(rng, tables, black):
    """Revisions without foreign keys: (upgrade lines, downgrade lines)."""
    up, down = [], []
    for _ in range(rng.randint(3, 9)):
        t = rng.choice(tables)
        kind = rng.random()
        col = rng.choice(t.columns[1:])
        name, sa_type = col[0], col[1]
        if kind < 0.3:
            up.append(f"    op.alter_column({q(t.name, black)}, {q(name, black)},")
            up.append(f"               existing_type=sa.{sa_type},")
            up.append(f"               nullable={not col[4]})")
            down.insert(0, f"    op.alter_column({q(t.name, black)}, {q(name, black)},")
            down.insert(1, f"               existing_type=sa.{sa_type},")
            down.insert(2, f"               nullable={col[4]})")
        elif kind < 0.55:
            ix = f"ix_{t.name}_{name}"
            up.append(f"    op.create_index(op.f({q(ix, black)}), {q(t.name, black)}, [{q(name, black)}], unique=False)")
            down.insert(0, f"    op.drop_index(op.f({q(ix, black)}), table_name={q(t.name, black)})")
        elif kind < 0.8 and t.late_plain:
            lname, lsa, _m, _p, _n = rng.choice(t.late_plain)
            up.append(f"    op.add_column({q(t.name, black)}, sa.Column({q(lname, black)}, sa.{lsa}, nullable=True))")
            down.insert(0, f"    op.drop_column({q(t.name, black)}, {q(lname, black)})")
        elif kind < 0.83:
            uq = f"uq_{t.name}_{name}"
            up.append(f"    op.create_unique_constraint({q(uq, black)}, {q(t.name, black)}, [{q(name, black)}])")
            down.insert(0, f"    op.drop_constraint({q(uq, black)}, {q(t.name, black)}, type_={q('unique', black)})")
        else:
            up.append("    # Backfill written by hand: autogenerate does not see data.")
            up.append("    op.execute(")
            up.append(f"        \"UPDATE {t.name} SET {name} = NULL \"")
            up.append(f"        \"WHERE id IN (SELECT id FROM {t.name} WHERE {name} IS NOT NULL LIMIT 1000)\"")
            up.append("    )")
    if not down:
        down = ["    pass"]
    return up, down


def render_revision(header, message, rev, down_rev, date, up, down, autogen):
    down_value = f"'{down_rev}'" if down_rev else "None"
    if header is BLACK_HEADER and down_rev:
        down_value = f'"{down_rev}"'
    text = header.format(message=message, rev=rev, down_doc=down_rev or "", date=date, down=down_value)
    body = []
    if autogen:
        body.append("    # ### commands auto generated by Alembic - please adjust! ###")
    body += up
    if autogen:
        body.append("    # ### end Alembic commands ###")
    text += "\n".join(body) + "\n\n\ndef downgrade() -> None:\n    \"\"\"Downgrade schema.\"\"\"\n"
    dbody = []
    if autogen:
        dbody.append("    # ### commands auto generated by Alembic - please adjust! ###")
    dbody += down
    if autogen:
        dbody.append("    # ### end Alembic commands ###")
    return text + "\n".join(dbody) + "\n"


def plan_history(rng, files, migrations):
    """Events in time order: ('create', tables) / ('fk', table, column, ref) / ('plain', tables)."""
    events = []
    n = len(files)
    for i, tables in enumerate(files):
        t0 = 0.9 * i / max(n, 1)
        # One file's tables land in one or two revisions.
        if rng.random() < 0.5:
            events.append((t0, "create", tables))
        else:
            events.append((t0, "create", tables[:2]))
            events.append((t0 + 0.0001, "create", tables[2:]))
        for t in tables:
            for col, ref, _nullable, _ondelete in t.late_fks:
                events.append((rng.uniform(t0 + 0.0002, 1.0), "fk", (t, col, ref)))
    events.sort(key=lambda e: e[0])
    fixed = len(events)
    if fixed > migrations:
        sys.exit(f"--migrations {migrations} is too small for {n} model files (need {fixed})")
    times = sorted(rng.uniform(0.0, 1.0) for _ in range(migrations - fixed))
    merged = []
    created = []
    it = iter(events)
    nxt = next(it, None)
    for t in times:
        while nxt is not None and nxt[0] <= t:
            merged.append(nxt)
            if nxt[1] == "create":
                created.extend(nxt[2])
            nxt = next(it, None)
        if not created:  # nothing exists yet: let the first create go first
            merged.append(nxt)
            created.extend(nxt[2])
            nxt = next(it, None)
        merged.append((t, "plain", list(created[-40:]) + rng.sample(created, min(8, len(created)))))
    while nxt is not None:
        merged.append(nxt)
        nxt = next(it, None)
    return merged


def write_project(out, migrations, model_files, seed):
    rng = random.Random(seed)
    files = plan_schema(rng, model_files)
    out.mkdir(parents=True, exist_ok=True)
    (out / "alembic.ini").write_text(ALEMBIC_INI)
    mig = out / "migrations"
    versions = mig / "versions"
    versions.mkdir(parents=True, exist_ok=True)
    (mig / "env.py").write_text(ENV_PY)
    (mig / "script.py.mako").write_text("# Alembic's template (unused by the benchmark).\n")
    models = out / "app" / "models"
    models.mkdir(parents=True, exist_ok=True)
    (out / "app" / "__init__.py").write_text("")
    (models / "base.py").write_text(BASE_PY)
    (models / "extensions.py").write_text(EXTENSIONS_PY)
    total_bytes = 0
    model_names = []
    for i, tables in enumerate(files):
        style = STYLES[i % len(STYLES)]
        name = f"{tables[0].name}.py"
        model_names.append(name[:-3])
        text = model_file(style, tables)
        (models / name).write_text(text)
        total_bytes += len(text)
    (models / "__init__.py").write_text(
        "".join(f"from . import {n}  # noqa: F401\n" for n in model_names)
    )

    fk_sites = 0
    files_with_fk = 0
    down_rev = None
    history = plan_history(rng, files, migrations)
    for index, (_t, kind, payload) in enumerate(history):
        rev = "%012x" % rng.getrandbits(48)
        black = rng.random() < 0.3
        header = BLACK_HEADER if black else HEADER
        day = 1 + index % 28
        date = f"20{18 + index * 7 // migrations:02d}-{1 + index % 12:02d}-{day:02d} 10:{index % 60:02d}:00.000000"
        calls = 0
        if kind == "create":
            inline = black and rng.random() < 0.4
            parts = []
            for t in payload:
                text, n = create_table(t, black, inline)
                parts.append(text)
                calls += n
            up = "\n".join(parts).split("\n")
            down = [f"    op.drop_table({q(t.name, black)})" for t in reversed(payload)]
            message = f"add {' and '.join(t.name for t in payload)}"
        elif kind == "fk":
            t, col, ref = payload
            up, down, calls = fk_add(rng, t, col, ref, black)
            if rng.random() < 0.5:  # autogenerate often picks up other changes too
                more_up, more_down = plain_ops(rng, [t], black)
                up += more_up
                down = more_down + down if more_down != ["    pass"] else down
            message = f"{t.name} {col}"
        else:
            up, down = plain_ops(rng, payload, black)
            message = f"update {payload[-1].name}"
        text = render_revision(header, message, rev, down_rev, date, up, down, autogen=not black)
        slug = message.replace(" ", "_")[:40]
        (versions / f"{rev}_{slug}.py").write_text(text)
        total_bytes += len(text)
        fk_sites += calls
        files_with_fk += calls > 0
        down_rev = rev
    manifest = {
        "seed": seed,
        "migration_files": len(history),
        "model_files": model_files,
        "tables": 4 * model_files,
        "fk_sites": fk_sites,
        "migration_files_with_fk": files_with_fk,
        "bytes": total_bytes,
    }
    (out / "bench-manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


ALEMBIC_INI = """[alembic]
script_location = %(here)s/migrations
prepend_sys_path = .
path_separator = os
sqlalchemy.url = postgresql:///bench

[post_write_hooks]
hooks = fix_migrations
fix_migrations.type = exec
fix_migrations.executable = fix-migrations
fix_migrations.options = REVISION_SCRIPT_FILENAME --write

[loggers]
keys = root,sqlalchemy,alembic

[handlers]
keys = console

[formatters]
keys = generic

[logger_root]
level = WARNING
handlers = console

[logger_sqlalchemy]
level = WARNING
handlers =
qualname = sqlalchemy.engine

[logger_alembic]
level = INFO
handlers =
qualname = alembic

[handler_console]
class = StreamHandler
args = (sys.stderr,)
level = NOTSET
formatter = generic

[formatter_generic]
format = %(levelname)-5.5s [%(name)s] %(message)s
"""

ENV_PY = '''from logging.config import fileConfig

from alembic import context
from sqlalchemy import engine_from_config, pool

from app.models.base import Base

config = context.config
if config.config_file_name is not None:
    fileConfig(config.config_file_name)
target_metadata = Base.metadata


def run_migrations_offline() -> None:
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=target_metadata,
                      literal_binds=True, dialect_opts={"paramstyle": "named"})
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connectable = engine_from_config(config.get_section(config.config_ini_section, {}),
                                     prefix="sqlalchemy.", poolclass=pool.NullPool)
    with connectable.connect() as connection:
        context.configure(connection=connection, target_metadata=target_metadata)
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
'''

BASE_PY = '''from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase, declarative_base

Base = declarative_base()


class TypedBase(DeclarativeBase):
    metadata = MetaData()
'''

EXTENSIONS_PY = '''from flask_sqlalchemy import SQLAlchemy

db = SQLAlchemy()
'''


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--migrations", type=int, default=5000)
    parser.add_argument("--model-files", type=int, default=500)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    if args.out.exists() and any(args.out.iterdir()):
        sys.exit(f"{args.out}: exists and is not empty")
    manifest = write_project(args.out, args.migrations, args.model_files, args.seed)
    print(json.dumps(manifest))


if __name__ == "__main__":
    main()
