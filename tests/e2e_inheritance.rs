//! End-to-end: joined-table inheritance. `Engineer(Person)` has its own table and declares
//! `company = relationship("Company", backref=backref("engineers", cascade="all"))` over
//! `people.company_id`. Deleting a company through the ORM deletes its engineers only; a
//! database CASCADE on `people.company_id` would delete the company's other people too. After
//! real `alembic revision --autogenerate`, `fix-migrations --write` and `alembic upgrade
//! head` on SQLite, the real ORM deletes a company from the upgraded database: the engineer
//! goes, the other person stays with no company.

mod support;

use std::process::Command;

use support::sqlite_project::SqliteProject;
use support::{run_ok, venv};

const MODELS: &str = r#"from typing import Optional

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import DeclarativeBase, Mapped, backref, mapped_column, relationship


class Base(DeclarativeBase):
    pass


class Company(Base):
    __tablename__ = "companies"
    id: Mapped[int] = mapped_column(primary_key=True)


class Person(Base):
    __tablename__ = "people"
    id: Mapped[int] = mapped_column(primary_key=True)
    type: Mapped[str] = mapped_column(String(20))
    company_id: Mapped[Optional[int]] = mapped_column(ForeignKey("companies.id"))
    __mapper_args__ = {"polymorphic_on": "type", "polymorphic_identity": "person"}


class Engineer(Person):
    __tablename__ = "engineers"
    id: Mapped[int] = mapped_column(ForeignKey("people.id"), primary_key=True)
    company = relationship("Company", backref=backref("engineers", cascade="all"))
    __mapper_args__ = {"polymorphic_identity": "engineer"}
"#;

/// Through the ORM, on the upgraded database with SQLite's foreign keys enforced: a company
/// with one engineer and one other person, then the company deleted. Prints the people left.
const DELETE_A_COMPANY: &str = r#"
import sys
sys.path.insert(0, ".")
from sqlalchemy import create_engine, event, select
from sqlalchemy.orm import Session
from models import Company, Engineer, Person

engine = create_engine("sqlite:///app.db")
event.listen(engine, "connect", lambda con, _: con.execute("PRAGMA foreign_keys=ON"))
with Session(engine) as session:
    company = Company(id=1)
    session.add_all([company, Engineer(id=1, company=company), Person(id=2, company_id=1)])
    session.commit()
    session.delete(session.get(Company, 1))
    session.commit()
    print(session.execute(select(Person.id, Person.type, Person.company_id)).all())
"#;

#[test]
fn a_backref_on_a_joined_subclass_leaves_the_other_people_when_a_company_goes() {
    let project = SqliteProject::new("e2e-inheritance", "");
    project.models(MODELS);
    project.autogenerate("people");
    let (code, report) = project.fix();
    assert_eq!(code, 0, "{report:#}");
    let company_key = report["foreign_keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["table"] == "people")
        .cloned()
        .unwrap_or_else(|| panic!("no key on people: {report:#}"));
    assert_eq!(
        (&company_key["ondelete"], &company_key["rule"]),
        (&"SET NULL".into(), &"nullable".into()),
        "{report:#}"
    );
    project.alembic(&["upgrade", "head"]);
    let rules = project.on_delete_rules();
    assert!(
        rules.contains(&("people.company_id".into(), "SET NULL".into())),
        "{rules:?}"
    );

    let left = run_ok(
        Command::new(venv().python())
            .arg("-c")
            .arg(DELETE_A_COMPANY)
            .current_dir(project.path()),
    )
    .unwrap();
    // The engineer went with the company (the ORM's cascade); the other person stayed.
    assert_eq!(
        left.stdout.trim(),
        "[(2, 'person', None)]",
        "{}",
        left.report()
    );
    eprintln!(
        "e2e: joined-inheritance backref: rules {rules:?}; people left after deleting the company: {}",
        left.stdout.trim()
    );
}
