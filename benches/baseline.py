#!/usr/bin/env python3
"""The benchmark's Python baseline: the same detection with the standard library's `ast`.

    python3 benches/baseline.py PROJECT [--workers 2]

Parses every migration (PROJECT/migrations/versions/*.py) and every model file (PROJECT/app,
PROJECT/models) in a process pool, as the tool parses in threads, and finds the foreign key
calls: in migrations `ForeignKeyConstraint(...)`, `ForeignKey(...)`, `create_foreign_key(...)`
inside `upgrade()` (what the tool reports) and foreign key `drop_constraint(...)`; in models
`ForeignKey(...)`, `ForeignKeyConstraint(...)` and `Field(foreign_key=...)`, with each call's
ondelete. Prints one JSON line: counts of files, migration key sites, model keys, and seconds.
"""

import argparse
import ast
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

FK_CALLS = {"ForeignKeyConstraint", "ForeignKey", "create_foreign_key"}


def callee(node):
    func = node.func
    if isinstance(func, ast.Attribute):
        return func.attr
    if isinstance(func, ast.Name):
        return func.id
    return None


def keyword(node, name):
    for kw in node.keywords:
        if kw.arg == name and isinstance(kw.value, ast.Constant):
            return kw.value.value
    return None


def migration_sites(path):
    tree = ast.parse(Path(path).read_bytes(), filename=path)
    sites = []
    drops = 0
    for fn in tree.body:
        if not isinstance(fn, ast.FunctionDef):
            continue
        for node in ast.walk(fn):
            if not isinstance(node, ast.Call):
                continue
            name = callee(node)
            if name in FK_CALLS and fn.name == "upgrade":
                sites.append((node.lineno, name, keyword(node, "ondelete")))
            elif name == "drop_constraint" and str(keyword(node, "type_")).lower() == "foreignkey":
                drops += 1
    return len(sites), drops


def model_keys(path):
    tree = ast.parse(Path(path).read_bytes(), filename=path)
    keys = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = callee(node)
        if name in ("ForeignKey", "ForeignKeyConstraint"):
            keys.append((node.lineno, keyword(node, "ondelete")))
        elif name == "Field" and keyword(node, "foreign_key") is not None:
            keys.append((node.lineno, keyword(node, "ondelete")))
    return len(keys)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("project", type=Path)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    start = time.perf_counter()
    migrations = sorted(str(p) for p in (args.project / "migrations" / "versions").glob("*.py"))
    models = sorted(
        str(p)
        for top in ("app", "models")
        if (args.project / top).is_dir()
        for p in (args.project / top).rglob("*.py")
    )
    chunk = max(1, len(migrations) // (args.workers * 8))
    with ProcessPoolExecutor(args.workers) as pool:
        per_migration = list(pool.map(migration_sites, migrations, chunksize=chunk))
        per_model = list(pool.map(model_keys, models, chunksize=max(1, chunk // 10)))
    result = {
        "migration_files": len(migrations),
        "model_files": len(models),
        "fk_sites": sum(n for n, _ in per_migration),
        "fk_drops": sum(d for _, d in per_migration),
        "model_keys": sum(per_model),
        "bytes": sum(os.path.getsize(p) for p in migrations + models),
        "seconds": round(time.perf_counter() - start, 3),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    sys.exit(main())
