"""Teachers, schools and API tokens: who a caller is (Principal) and how a token is made and hashed.
Only a token's SHA-256 is stored."""
from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import select

from app.store.tables import ApiToken, School, Teacher


@dataclass(frozen=True)
class Principal:
    teacher_id: str
    school_id: str
    role: str
    email: str

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token() -> str:
    return "eduq_" + secrets.token_urlsafe(32)


def create_teacher(session, email: str, name: str, school: str = "Default School",
                   role: str = "teacher") -> tuple[Teacher, str]:
    sch = session.scalar(select(School).where(School.name == school))
    if sch is None:
        sch = School(name=school)
        session.add(sch)
        session.flush()
    teacher = session.scalar(select(Teacher).where(Teacher.email == email))
    if teacher is None:
        teacher = Teacher(email=email, name=name, school_id=sch.id, role=role)
        session.add(teacher)
        session.flush()
    token = new_token()
    session.add(ApiToken(teacher_id=teacher.id, token_hash=hash_token(token)))
    session.flush()
    return teacher, token
