"""Notification texts in Chinese and English, kept together; each fits one SMS."""

from __future__ import annotations

import re
from typing import Any

KIND_NAMES = {
    "zh": {
        "water_delivery": "送水",
        "coal_hauling": "搬煤",
        "plumbing_repair": "水管维修",
        "heating_repair": "暖气维修",
        "electrical_repair": "电器维修",
        "home_cleaning": "打扫卫生",
        "errand_shopping": "代购",
        "medicine_pickup": "代取药",
        "meal_delivery": "送餐",
        "mail_and_bills": "代缴代寄",
        "transport": "接送",
        "farm_help": "农活帮忙",
        "storm_prep": "防风准备",
        "mediation": "调解",
        "tutoring": "辅导",
        "companionship_visit": "陪伴探访",
        "other": "其他求助",
    },
    "en": {},
}
FAMILY_NAMES = {
    "zh": {
        "water": "停水",
        "heat": "供暖",
        "power": "停电",
        "food": "食物",
        "health": "医药",
        "transport": "出行",
        "home": "居家",
        "care": "关爱",
        "other": "其他",
    },
    "en": {},
}
PRIORITY_NAMES = {"zh": {"critical": "紧急", "high": "高", "normal": "普通", "low": "低"}, "en": {}}
SKILL_NAMES = {
    "zh": {
        "general": "通用",
        "heavy_lifting": "搬运",
        "driving": "驾驶",
        "tanker_truck": "水罐车",
        "plumbing": "水管",
        "electrical": "电工",
        "heating": "供暖",
        "cooking": "烹饪",
        "medical": "医疗",
        "mediation": "调解",
        "tutoring": "辅导",
    },
    "en": {},
}
"""Skills as people read them (the console's and the roster's Chinese words)."""

TEMPLATES: dict[str, dict[str, str]] = {
    "offer": {
        "zh": "【Aidline】{priority}：{kind}，距您{distance}公里，{accept_by}前回复。"
        "回YES {code}接受，NO {code}拒绝。{link}",
        "en": "Aidline {priority}: {kind}, {distance} km away. Answer by {accept_by}. "
        "Reply YES {code} or NO {code}. {link}",
    },
    "offer_reminder": {
        "zh": "【Aidline】提醒：{kind}求助待您回复，{accept_by}截止。接受回YES {code}，拒绝回NO {code}。",
        "en": "Aidline reminder: {kind} still waits for your answer until {accept_by}. Reply YES {code} or NO {code}.",
    },
    "assigned_by_dispatcher": {
        "zh": "【Aidline】调度员已将{kind}求助分派给您，距您{distance}公里，请于{deadline}前完成。{link}",
        "en": "Aidline: a dispatcher assigned you a {kind} need, {distance} km away, due {deadline}. {link}",
    },
    "cancelled": {
        "zh": "【Aidline】{kind}求助已取消，无需前往。原因：{reason}",
        "en": "Aidline: the {kind} need was cancelled; no need to go. Reason: {reason}",
    },
    "offer_taken": {
        "zh": "【Aidline】{kind}求助已由其他志愿者接单，您无需前往。谢谢！",
        "en": "Aidline: another volunteer took the {kind} need first; no need to go. Thank you!",
    },
    "offer_preempted": {
        "zh": "【Aidline】{kind}求助的邀请已撤回：附近有更紧急的求助需要您，请查看新的邀请。",
        "en": "Aidline: the {kind} offer is withdrawn: a more urgent need nearby needs you; see your new offer.",
    },
    "offer_moved": {
        "zh": "【Aidline】{kind}求助的邀请已撤回：有离它更近的志愿者前往，您离另一处求助最近，请查看新的邀请。",
        "en": "Aidline: the {kind} offer is withdrawn: a volunteer nearer to it will go, and you are the nearest "
        "to another need; see your new offer.",
    },
    "received": {
        "zh": "【Aidline】已收到您的{kind}求助，正在为您联系志愿者。查看进度：{track}",
        "en": "Aidline: we received your {kind} request and are finding a volunteer. Track it: {track}",
    },
    "assigned": {
        "zh": "【Aidline】志愿者{volunteer}已接单，距您约{distance}公里。进度：{track}",
        "en": "Aidline: volunteer {volunteer} took your request, about {distance} km away. Track: {track}",
    },
    "en_route": {
        "zh": "【Aidline】志愿者{volunteer}正在赶来。进度：{track}",
        "en": "Aidline: volunteer {volunteer} is on the way. Track: {track}",
    },
    "done": {
        "zh": "【Aidline】您的{kind}求助已完成。请为服务打分（1-5）：{track}",
        "en": "Aidline: your {kind} request is done. Please rate it 1-5: {track}",
    },
    "deferred": {
        "zh": "【Aidline】您的{kind}求助暂缓处理，原因：{reason}。我们会再联系您。{track}",
        "en": "Aidline: your {kind} request is deferred: {reason}. We will contact you again. {track}",
    },
    "escalated": {
        "zh": "【Aidline】需人工调度：{kind}（{priority}），{reason}。{link}",
        "en": "Aidline escalation: {kind} ({priority}), {reason}. {link}",
    },
    "overdue": {
        "zh": "【Aidline】超期：{kind}（{priority}）已过承诺完成时间{deadline}。{link}",
        "en": "Aidline overdue: {kind} ({priority}) passed its committed deadline {deadline}. {link}",
    },
    "delivery_failed": {
        "zh": "【Aidline】通知未能送达：{kind}求助的{reason}。请电话联系。{link}",
        "en": "Aidline: a notification could not be delivered ({reason}) for a {kind} need. Please call. {link}",
    },
    "escalated_captain": {
        "zh": "【Aidline】网格求助待您处理：{kind}（{priority}），{reason}。收到请回复ACK {code}。{link}",
        "en": "Aidline: a need in your grid needs you: {kind} ({priority}), {reason}. Reply ACK {code} to take it. "
        "{link}",
    },
    "escalated_tier": {
        "zh": "【Aidline】升级至{tier}：{kind}（{priority}）仍无人确认，{reason}。{link}",
        "en": "Aidline escalation to {tier}: {kind} ({priority}) is still not acknowledged, {reason}. {link}",
    },
    "visit_overdue": {
        "zh": "【Aidline】探访超期：{kind}未在{deadline}前完成，请网格长跟进。{link}",
        "en": "Aidline: a {kind} was not made by {deadline}; grid captain, please follow up. {link}",
    },
    "incident_opened": {
        "zh": "【Aidline】事件：{family}，{size}个求助集中在{radius}公里内，"
        "其中{vulnerable}个涉及需特别关照的人。{link}",
        "en": "Aidline incident: {size} {family} needs within {radius} km, {vulnerable} of them for vulnerable people. "
        "{link}",
    },
    "incident_half": {
        "zh": "【Aidline】事件进展：{family}事件已解决过半（{resolved}/{size}）。{link}",
        "en": "Aidline incident update: half of the {family} incident is resolved ({resolved} of {size}). {link}",
    },
    "incident_all": {
        "zh": "【Aidline】事件进展：{family}事件的{size}个求助已全部解决。{link}",
        "en": "Aidline incident update: all {size} needs of the {family} incident are resolved. {link}",
    },
}

TRACKING_TEXTS: dict[str, dict[str, str]] = {
    "incident": {
        "zh": "您的求助属于一起{family}事件（共{size}个求助），我们正在统一处理。",
        "en": "Your request is part of a wider {family} incident ({size} requests) that is being handled together.",
    },
}
"""Sentences shown on the requester's tracking page (not sent)."""

TITLES = {"zh": "Aidline 志愿调度", "en": "Aidline dispatch"}


ESCALATION_TOPICS = frozenset({"escalated", "escalated_captain", "escalated_tier"})
"""Topics whose {reason} is why the need was escalated (said in the message's language)."""

_NOBODY = re.compile(r"^no available volunteer with (?P<skills>.+) within (?P<km>\d+(?:\.\d+)?) km$")
_TOO_LATE = re.compile(
    r"^no available volunteer with (?P<skills>.+) can arrive in time \(within (?P<km>\d+(?:\.\d+)?) km\)$"
)
ANY_SKILL = "any skill"
ESCALATION_REASONS = {
    "zh": {
        "deadline at risk: still not assigned": "临近完成期限仍未指派",
        "past the committed completion deadline": "已超过承诺完成时间",
    },
    "en": {},
}
"""The escalation reasons the service words itself (service.dispatch), by language; the matcher's ('no available
volunteer with <skills> within <km> km', service/store/lua/match.lua) are said from their parts."""


def escalation_reason(reason: str, locale: str) -> str:
    """Why a need was escalated, in one language: the matcher's reason from its skills (by their names) and its
    radius; a reason not known here as it is."""
    lang = locale if locale in ("zh", "en") else "zh"
    if lang == "en":
        return reason
    found = _NOBODY.match(reason) or _TOO_LATE.match(reason)
    if found is None:
        return ESCALATION_REASONS[lang].get(reason, reason)
    wanted = found["skills"]
    skills = "" if wanted == ANY_SKILL else "、".join(skill_name(s, lang) for s in wanted.split(", "))
    if found.re is _TOO_LATE:
        return f"{found['km']}公里内没有能按时赶到的{skills}志愿者"
    return f"{found['km']}公里内没有空闲的{skills}志愿者"


def render(topic: str, locale: str, values: dict[str, Any]) -> tuple[str, str]:
    """Title and body of one message; unknown locales fall back to Chinese."""
    lang = locale if locale in ("zh", "en") else "zh"
    shown = _shown(lang, values)
    if topic in ESCALATION_TOPICS:
        shown["reason"] = escalation_reason(str(values.get("reason", "")), lang)
    return TITLES[lang], TEMPLATES[topic][lang].format_map(_Blank(shown)).strip()


def tracking_text(name: str, locale: str, values: dict[str, Any]) -> str:
    """A sentence of the tracking page in one language, with kinds and families by name."""
    lang = locale if locale in ("zh", "en") else "zh"
    return TRACKING_TEXTS[name][lang].format_map(_Blank(_shown(lang, values))).strip()


def _shown(lang: str, values: dict[str, Any]) -> dict[str, Any]:
    shown = dict(values)
    kind = str(values.get("kind", ""))
    shown["kind"] = KIND_NAMES[lang].get(kind, kind.replace("_", " "))
    priority = str(values.get("priority", ""))
    shown["priority"] = PRIORITY_NAMES[lang].get(priority, priority)
    family = str(values.get("family", ""))
    shown["family"] = FAMILY_NAMES[lang].get(family, family)
    return shown


class _Blank(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return ""


REPORT_COLUMNS: dict[str, dict[str, str]] = {
    "group": {"zh": "分组", "en": "group"},
    "label": {"zh": "名称", "en": "name"},
    "received": {"zh": "受理数", "en": "received"},
    "resolved": {"zh": "办结数", "en": "resolved"},
    "resolution_rate": {"zh": "办结率", "en": "resolution rate"},
    "on_time": {"zh": "按时完成数", "en": "done on time"},
    "on_time_rate": {"zh": "按时率", "en": "on-time rate"},
    "rated": {"zh": "评价数", "en": "ratings"},
    "satisfaction": {"zh": "满意率", "en": "satisfaction"},
    "mean_rating": {"zh": "平均评分", "en": "mean rating"},
    "reopened": {"zh": "重新打开", "en": "reopened"},
    "escalated": {"zh": "上报", "en": "escalated"},
    "deferred": {"zh": "暂缓", "en": "deferred"},
    "first_offer_median_s": {"zh": "首次派单中位数(秒)", "en": "to first offer, median (s)"},
    "first_offer_p90_s": {"zh": "首次派单P90(秒)", "en": "to first offer, p90 (s)"},
    "acceptance_median_s": {"zh": "接单中位数(秒)", "en": "to acceptance, median (s)"},
    "acceptance_p90_s": {"zh": "接单P90(秒)", "en": "to acceptance, p90 (s)"},
    "done_median_s": {"zh": "完成中位数(秒)", "en": "to done, median (s)"},
    "done_p90_s": {"zh": "完成P90(秒)", "en": "to done, p90 (s)"},
    "service_hours": {"zh": "服务时长(小时)", "en": "service hours"},
    "tasks": {"zh": "服务次数", "en": "tasks done"},
    "visits": {"zh": "探访", "en": "visits"},
    "total": {"zh": "合计", "en": "total"},
    "none": {"zh": "（无）", "en": "(none)"},
}
"""Column and row names of reports (CSV and `aidline report`)."""

ATTENTION_NAMES = {"zh": {"red": "红", "orange": "橙", "yellow": "黄", "green": "绿"}, "en": {}}
VISIT_STATUS_NAMES = {"zh": {"due": "应访", "done": "已访", "overdue": "逾期"}, "en": {}}


def report_column(name: str, locale: str) -> str:
    """A report column's heading; visit columns ('visits_<level>_<status>') are composed."""
    lang = locale if locale in ("zh", "en") else "zh"
    if name.startswith("visits_"):
        _, level, status = name.split("_", 2)
        if lang == "zh":
            return f"{REPORT_COLUMNS['visits']['zh']}-{ATTENTION_NAMES['zh'][level]}-{VISIT_STATUS_NAMES['zh'][status]}"
        return f"visits {level} {status}"
    return REPORT_COLUMNS[name][lang]


def kind_name(kind: str, locale: str) -> str:
    """A need kind as people read it."""
    lang = locale if locale in ("zh", "en") else "zh"
    return KIND_NAMES[lang].get(kind, kind.replace("_", " "))


def skill_name(skill: str, locale: str) -> str:
    """A skill as people read it."""
    lang = locale if locale in ("zh", "en") else "zh"
    return SKILL_NAMES[lang].get(skill, skill.replace("_", " "))
