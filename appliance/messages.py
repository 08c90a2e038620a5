"""The one message catalog: every user-visible text, Chinese first, English second.

Add a key to ``CATALOG`` with both languages; ``text(key, lang, **fields)`` formats it.
A missing key or language is a programming error and raises ``KeyError`` at once.
"""

from __future__ import annotations

LANGS = ("zh", "en")
DEFAULT_LANG = "zh"

CATALOG: dict[str, dict[str, str]] = {
    # prompts spoken to callers
    "prompt.welcome": {
        "zh": "您好，欢迎致电。咨询请按1。",
        "en": "Welcome. For enquiries, press 1.",
    },
    "prompt.invalid": {
        "zh": "输入有误，请重新输入。",
        "en": "Sorry, that is not a valid choice.",
    },
    "prompt.goodbye": {
        "zh": "感谢您的来电，再见。",
        "en": "Thank you for calling. Goodbye.",
    },
    "prompt.transfer": {
        "zh": "正在为您转接坐席，请稍候。",
        "en": "Transferring you to an agent, please wait.",
    },
    # command line
    "cli.demo.ready": {
        "zh": "演示已启动：{url}  用户名 {user}  密码 {password}  数据目录 {data_dir}",
        "en": "Demo running: {url}  user {user}  password {password}  data directory {data_dir}",
    },
    "cli.admin.created": {
        "zh": "已生成管理员初始密码（只显示这一次）：用户名 {user}  密码 {password}",
        "en": "Generated the first admin password (shown only once): user {user}  password {password}",
    },
    "warn.no_espeak": {
        "zh": "未找到 espeak-ng：语音提示以提示音代替",
        "en": "espeak-ng not found: prompts are played as a tone instead of speech",
    },
}


def text(key: str, lang: str = DEFAULT_LANG, **fields: object) -> str:
    """Return the catalog text for ``key`` in ``lang`` ('zh' or 'en'), formatted with ``fields``."""
    if lang not in LANGS:
        raise KeyError(f"language {lang!r} is not one of {LANGS}")
    return CATALOG[key][lang].format(**fields)
