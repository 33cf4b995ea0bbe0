"""Request bodies, validated with pydantic; their JSON Schemas go into the OpenAPI document."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Login(Body):
    username: str = Field(min_length=1, max_length=50)
    password: str = Field(min_length=1, max_length=200)
    otp: str | None = Field(default=None, pattern=r"^[0-9]{6}$",
                            description="已开启两步验证的账号：验证器上的 6 位验证码")
    recovery_code: str | None = Field(default=None, min_length=10, max_length=20,
                                      description="或一个备用码（每个只能用一次）")

    @model_validator(mode="after")
    def one_second_factor(self) -> "Login":
        if self.otp and self.recovery_code:
            raise ValueError("give either otp or recovery_code, not both")
        return self


class OtpCode(Body):
    otp: str = Field(pattern=r"^[0-9]{6}$", description="验证器上当前的 6 位验证码")


class TwoFactorOff(Body):
    otp: str | None = Field(default=None, pattern=r"^[0-9]{6}$", description="验证器上的 6 位验证码")
    password: str | None = Field(default=None, min_length=1, max_length=200, description="或当前密码")

    @model_validator(mode="after")
    def exactly_one(self) -> "TwoFactorOff":
        if (self.otp is None) == (self.password is None):
            raise ValueError("give either otp or password")
        return self


class Resident(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    name: str = Field(min_length=1, max_length=50, description="办事群众姓名")
    id_number: str | None = Field(default=None, pattern=r"^[0-9]{17}[0-9Xx]$", description="身份证号")
    phone: str | None = Field(default=None, pattern=r"^[0-9+\- ]{5,20}$")
    note: str | None = Field(default=None, max_length=200)


class TakeTicket(Body):
    item_id: int
    resident: Resident
    priority: Literal["elderly", "disabled", "pregnant", "military"] | None = None


class Transfer(Body):
    department_id: int
    centre_id: int | None = None
    reason: str = Field(default="", max_length=200)


class Complete(Body):
    result: Literal["done", "materials_incomplete", "not_eligible", "consultation_only"] = "done"
    note: str = Field(default="", max_length=2000)


class Cancel(Body):
    reason: str = Field(default="", max_length=200)


class Rating(Body):
    score: int = Field(ge=1, le=5)
    comment: str = Field(default="", max_length=500)


class OpenTidal(Body):
    department_id: int
    clerk_id: int
    centre_id: int | None = None
    minutes: int | None = Field(default=None, ge=5, le=720)
    name: str | None = Field(default=None, max_length=100)


class MaterialIn(Body):
    name: str = Field(min_length=1, max_length=100)
    required: bool = True
    note: str = Field(default="", max_length=200)


class ItemIn(Body):
    code: str = Field(min_length=1, max_length=20)
    name: str = Field(min_length=1, max_length=100)
    department_id: int
    level: Literal["district", "town"]
    materials: list[MaterialIn] = Field(default_factory=list, max_length=50)
    description: str = Field(default="", max_length=2000)
    initials: str = Field(default="", max_length=40)
    active: bool = True


class WindowIn(Body):
    name: str = Field(min_length=1, max_length=100)
    centre_id: int
    department_ids: list[int] = Field(min_length=1)
    active: bool = True


RoleName = Literal["worker", "clerk", "expert", "supervisor", "admin", "auditor"]


class UserIn(Body):
    username: str = Field(min_length=2, max_length=50, pattern=r"^[A-Za-z0-9_.-]+$")
    password: str = Field(min_length=8, max_length=200)
    role: RoleName
    display_name: str = Field(default="", max_length=50)
    extension_point_id: int | None = None
    window_ids: list[int] | None = None
    department_ids: list[int] | None = None
    centre_ids: list[int] | None = Field(default=None, description="部门负责人所辖中心（含下级中心）")
    specialties: list[str] | None = None


class UserPatch(Body):
    display_name: str | None = Field(default=None, max_length=50)
    password: str | None = Field(default=None, min_length=8, max_length=200)
    active: bool | None = None
    role: RoleName | None = Field(default=None, description="改变角色会使该账号全部令牌失效，并清空原有绑定")
    extension_point_id: int | None = None
    window_ids: list[int] | None = None
    department_ids: list[int] | None = None
    centre_ids: list[int] | None = None
    specialties: list[str] | None = None


class PasswordChange(Body):
    current_password: str = Field(min_length=1, max_length=200)
    new_password: str = Field(min_length=8, max_length=200)


class BeginUpload(Body):
    material: str = Field(min_length=1, max_length=20, description="清单项 id 或 other")
    size: int = Field(gt=0)
    filename: str = Field(default="", max_length=200)
    source: Literal["upload", "capture"] = "upload"


class Review(Body):
    decision: Literal["accepted", "rejected"]
    reason: str = Field(default="", max_length=500)


class Invite(Body):
    expert_ids: list[int] = Field(min_length=1, max_length=8, description="专家的用户 id")
    note: str = Field(default="", max_length=500, description="给专家的简短说明")


class Decline(Body):
    reason: str = Field(default="", max_length=500)


class Stage(Body):
    expert_ids: list[int] | None = Field(default=None, description="省略时为本件全部已接受邀请的专家")


class Opinion(Body):
    text: str = Field(min_length=1, max_length=5000)


class ExpertProfile(Body):
    available: bool | None = None
    parallel_consultations: bool | None = None
