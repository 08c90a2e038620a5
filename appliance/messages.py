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
    "prompt.blocked": {  # a screened-out caller (screening.blacklist, screening.block_withheld)
        "zh": "对不起，您的来电无法接通。",
        "en": "Sorry, your call cannot be connected.",
    },
    "prompt.transfer": {
        "zh": "正在为您转接坐席，请稍候。",
        "en": "Transferring you to an agent, please wait.",
    },
    "prompt.queue_busy": {  # to a caller in queue, repeated every queue.announce_s
        "zh": "坐席正忙，请稍候。您现在排在第{position}位，预计等待{minutes}分钟。",
        "en": "All agents are busy, please hold. You are number {position} in the queue; the expected wait is "
              "{minutes} minutes.",
    },
    "prompt.queue_callback": {  # added to prompt.queue_busy when the queue has a callback_key
        "zh": "如需在坐席空闲时回拨给您，请按{digit}键。",
        "en": " To be called back when an agent is free, press {digit}.",
    },
    "prompt.callback": {  # the caller pressed the callback key: then their line is cleared
        "zh": "好的，坐席空闲时将回拨您的电话 {number}，您的排队位置保留。您现在可以挂机了。",
        "en": "We will call you back on {number} when an agent is free; you keep your place. You may hang up now.",
    },
    "prompt.voicemail": {  # before the beep of a voicemail box
        "zh": "您好，现在无人接听。请在提示音后留言，留言完毕请挂机或按井号键。",
        "en": "Nobody can take your call now. Please leave a message after the tone; hang up or press hash "
              "when you have finished.",
    },
    "prompt.code_done": {  # an agent's feature code (*1 .. *4) was accepted
        "zh": "操作成功。",
        "en": "Done.",
    },
    "prompt.code_failed": {
        "zh": "操作失败，请重试。",
        "en": "That did not work; please try again.",
    },
    # configuration defaults
    "config.seat_name": {
        "zh": "坐席{n}",
        "en": "Seat {n}",
    },
    # command line
    "cli.demo.ready": {
        "zh": "演示已启动：{url}  用户名 {user}  密码 {password}  数据目录 {data_dir}",
        "en": "Demo running: {url}  user {user}  password {password}  data directory {data_dir}",
    },
    "cli.demo.sip": {
        "zh": "SIP 服务器 {host}:{port}：IP 话机分机 {extensions}（密码见 {info}）；中继接受来自 {host} 拨打 400 的呼叫",
        "en": "SIP server {host}:{port}: IP phone extensions {extensions} (passwords in {info}); the trunk takes "
              "calls to 400 from {host}",
    },
    "cli.admin.created": {
        "zh": "已生成管理员初始密码（只显示这一次）：用户名 {user}  密码 {password}",
        "en": "Generated the first admin password (shown only once): user {user}  password {password}",
    },
    "warn.no_espeak": {
        "zh": "未找到 espeak-ng：语音提示以提示音代替",
        "en": "espeak-ng not found: prompts are played as a tone instead of speech",
    },
    # web pages (webui)
    "web.title": {
        "zh": "呼叫中心",
        "en": "Call centre",
    },
    "web.login.title": {
        "zh": "登录",
        "en": "Sign in",
    },
    "web.login.user": {
        "zh": "用户名",
        "en": "User name",
    },
    "web.login.password": {
        "zh": "密码",
        "en": "Password",
    },
    "web.login.submit": {
        "zh": "登录",
        "en": "Sign in",
    },
    "web.login.failed": {
        "zh": "用户名或密码错误",
        "en": "Wrong user name or password",
    },
    "web.login.required": {
        "zh": "请先登录",
        "en": "Please sign in first",
    },
    "web.logout": {
        "zh": "退出",
        "en": "Sign out",
    },
    "web.trunks": {
        "zh": "中继通道",
        "en": "Trunk channels",
    },
    "web.seats": {
        "zh": "坐席",
        "en": "Seats",
    },
    "web.queue": {
        "zh": "排队",
        "en": "Queue",
    },
    "web.queue.empty": {
        "zh": "无排队来电",
        "en": "No calls waiting",
    },
    "web.today": {
        "zh": "今日统计",
        "en": "Today",
    },
    "web.today.offered": {
        "zh": "呼入",
        "en": "Offered",
    },
    "web.today.answered": {
        "zh": "接通",
        "en": "Answered",
    },
    "web.today.abandoned": {
        "zh": "放弃",
        "en": "Abandoned",
    },
    "web.today.in_progress": {
        "zh": "进行中",
        "en": "In progress",
    },
    "web.col.seat": {
        "zh": "坐席",
        "en": "Seat",
    },
    "web.col.extension": {
        "zh": "分机",
        "en": "Extension",
    },
    "web.col.state": {
        "zh": "状态",
        "en": "State",
    },
    "web.col.caller": {
        "zh": "主叫",
        "en": "Caller",
    },
    "web.col.since": {
        "zh": "持续",
        "en": "For",
    },
    "web.col.position": {
        "zh": "位置",
        "en": "Position",
    },
    "web.col.waiting": {
        "zh": "等待",
        "en": "Waiting",
    },
    "web.live": {
        "zh": "实时连接",
        "en": "Live",
    },
    "web.alarm.span": {
        "zh": "中继 {span} 告警",
        "en": "Span {span} alarm",
    },
    "web.alarm.port": {
        "zh": "端口停用",
        "en": "Port out of service",
    },
    "web.alarm.card.removed": {
        "zh": "语音卡已拔出",
        "en": "Voice card removed",
    },
    "web.alarm.recording.disk_full": {  # appliance.recorder: the disk is full, calls go on unrecorded
        "zh": "磁盘已满，录音已停止",
        "en": "Disk full: recording stopped",
    },
    "web.alarm.sms.down": {  # appliance.smsapi: messages wait on a transport that is down
        "zh": "短信发送通道不可用，短信在排队",
        "en": "SMS transport down: messages are waiting",
    },
    "web.alarm.recording.write_failed": {
        "zh": "录音写入失败，录音已停止",
        "en": "Recording write failed: recording stopped",
    },
    "web.offline": {
        "zh": "与主机的连接中断，正在重连",
        "en": "Connection to the box lost, reconnecting",
    },
    "web.core_down": {
        "zh": "核心进程未运行（控制套接字 {socket}）",
        "en": "The core is not running (control socket {socket})",
    },
    "web.state.idle": {
        "zh": "空闲",
        "en": "Idle",
    },
    "web.state.ringing": {
        "zh": "振铃",
        "en": "Ringing",
    },
    "web.state.ivr": {
        "zh": "语音导航",
        "en": "IVR",
    },
    "web.state.queued": {
        "zh": "排队",
        "en": "Queued",
    },
    "web.state.agent": {
        "zh": "通话",
        "en": "With agent",
    },
    "web.state.alarm": {
        "zh": "告警",
        "en": "Alarm",
    },
    "web.state.available": {
        "zh": "示闲",
        "en": "Available",
    },
    "web.state.talking": {
        "zh": "通话中",
        "en": "Talking",
    },
    "web.state.logged_out": {
        "zh": "未登录",
        "en": "Logged out",
    },
    "web.state.busy": {
        "zh": "示忙",
        "en": "Busy",
    },
    "web.state.out_of_service": {
        "zh": "故障停用",
        "en": "Out of service",
    },
    "web.state.wrap_up": {
        "zh": "话后整理",
        "en": "Wrap-up",
    },
    "web.state.external": {
        "zh": "外转",
        "en": "Transferred out",
    },
    "web.state.voicemail": {
        "zh": "留言",
        "en": "Voicemail",
    },
    # why an agent is busy (appliance.featurecodes.REASONS) or out of service
    "web.reason.other": {"zh": "其他", "en": "other"},
    "web.reason.rest": {"zh": "休息", "en": "rest"},
    "web.reason.meal": {"zh": "就餐", "en": "meal"},
    "web.reason.meeting": {"zh": "会议", "en": "meeting"},
    "web.reason.training": {"zh": "培训", "en": "training"},
    "web.reason.paperwork": {"zh": "整理", "en": "paperwork"},
    "web.reason.no_answer": {"zh": "未接听", "en": "no answer"},
    "web.reason.supervisor": {"zh": "班长设置", "en": "set by supervisor"},
    "web.reason.off_hook": {"zh": "摘机", "en": "off hook"},
    # the SMS page (webui.sms)
    "web.sms.title": {"zh": "短信", "en": "SMS"},
    "web.sms.nav.dashboard": {"zh": "监控", "en": "Dashboard"},
    "web.sms.nav.sms": {"zh": "短信", "en": "SMS"},
    "web.sms.transports": {"zh": "短信通道", "en": "Transports"},
    "web.sms.transport.up": {"zh": "正常", "en": "up"},
    "web.sms.transport.down": {"zh": "断开", "en": "down"},
    "web.sms.transport.default": {"zh": "默认", "en": "default"},
    "web.sms.via.modem": {"zh": "短信猫", "en": "GSM modem"},
    "web.sms.via.smgp": {"zh": "电信网关", "en": "SMGP gateway"},
    "web.sms.via.cmpp": {"zh": "移动网关", "en": "CMPP gateway"},
    "web.sms.via.http": {"zh": "HTTP 网关", "en": "HTTP gateway"},
    "web.sms.send": {"zh": "发短信", "en": "Send an SMS"},
    "web.sms.send.submit": {"zh": "发送", "en": "Send"},
    "web.sms.send.count": {"zh": "{chars} 字，约 {parts} 条", "en": "{chars} characters, about {parts} part(s)"},
    "web.sms.send.queued": {"zh": "已提交", "en": "Queued"},
    "web.sms.field.to": {"zh": "号码", "en": "Number"},
    "web.sms.field.text": {"zh": "内容", "en": "Text"},
    "web.sms.field.name": {"zh": "名称", "en": "Name"},
    "web.sms.outbox": {"zh": "发件箱（最近 50 条）", "en": "Outbox (latest 50)"},
    "web.sms.outbox.empty": {"zh": "没有短信", "en": "No messages"},
    "web.sms.col.time": {"zh": "时间", "en": "Time"},
    "web.sms.col.number": {"zh": "号码", "en": "Number"},
    "web.sms.col.text": {"zh": "内容", "en": "Text"},
    "web.sms.col.via": {"zh": "通道", "en": "Transport"},
    "web.sms.col.state": {"zh": "状态", "en": "State"},
    "web.sms.col.reason": {"zh": "原因", "en": "Reason"},
    "web.sms.col.source": {"zh": "来源", "en": "Source"},
    "web.sms.col.template": {"zh": "模板", "en": "Template"},
    "web.sms.col.recipients": {"zh": "收件人", "en": "Recipients"},
    "web.sms.col.schedule": {"zh": "时间安排", "en": "Schedule"},
    "web.sms.col.counts": {"zh": "统计", "en": "Counts"},
    "web.sms.col.parts": {"zh": "条数", "en": "Parts"},
    "web.sms.state.queued": {"zh": "排队中", "en": "Queued"},
    "web.sms.state.sending": {"zh": "发送中", "en": "Sending"},
    "web.sms.state.sent": {"zh": "已发送", "en": "Sent"},
    "web.sms.state.delivered": {"zh": "已送达", "en": "Delivered"},
    "web.sms.state.failed": {"zh": "失败", "en": "Failed"},
    "web.sms.state.unknown": {"zh": "结果未知", "en": "Outcome unknown"},
    "web.sms.resend": {"zh": "重发", "en": "Resend"},
    "web.sms.give_up": {"zh": "放弃", "en": "Give up"},
    "web.sms.inbound": {"zh": "收到的短信", "en": "Received messages"},
    "web.sms.inbound.empty": {"zh": "没有收到短信", "en": "No messages received"},
    "web.sms.opted_out": {"zh": "退订", "en": "opt-out"},
    "web.sms.templates": {"zh": "短信模板", "en": "Templates"},
    "web.sms.templates.empty": {"zh": "没有模板", "en": "No templates"},
    "web.sms.template.save": {"zh": "保存模板", "en": "Save template"},
    "web.sms.template.help": {"zh": "可用字段（写在大括号里）：", "en": "Fields you can use, in braces:"},
    "web.sms.template.field.客户姓名": {"zh": "客户姓名", "en": "customer name"},
    "web.sms.template.field.产品": {"zh": "产品", "en": "product"},
    "web.sms.template.field.日期": {"zh": "日期", "en": "date"},
    "web.sms.template.field.号码": {"zh": "号码", "en": "number"},
    "web.sms.template.field.坐席": {"zh": "坐席", "en": "agent"},
    "web.sms.template.field.公司": {"zh": "公司", "en": "company"},
    "web.sms.delete": {"zh": "删除", "en": "Delete"},
    "web.sms.remove": {"zh": "移除", "en": "Remove"},
    "web.sms.confirm.delete": {"zh": "确定删除“{name}”吗？", "en": "Delete \"{name}\"?"},
    "web.sms.confirm.cancel": {"zh": "确定取消群发“{name}”吗？", "en": "Cancel campaign \"{name}\"?"},
    "web.sms.campaigns": {"zh": "短信群发", "en": "Campaigns"},
    "web.sms.campaigns.empty": {"zh": "没有群发", "en": "No campaigns"},
    "web.sms.campaign.create": {"zh": "新建群发", "en": "Create campaign"},
    "web.sms.campaign.cancel": {"zh": "取消", "en": "Cancel"},
    "web.sms.campaign.state.scheduled": {"zh": "待发送", "en": "Scheduled"},
    "web.sms.campaign.state.running": {"zh": "发送中", "en": "Running"},
    "web.sms.campaign.state.done": {"zh": "已完成", "en": "Done"},
    "web.sms.campaign.state.cancelled": {"zh": "已取消", "en": "Cancelled"},
    "web.sms.count.added": {"zh": "已发", "en": "added"},
    "web.sms.count.opted_out": {"zh": "已退订", "en": "opted out"},
    "web.sms.count.missing_value": {"zh": "缺字段", "en": "missing value"},
    "web.sms.count.bad_number": {"zh": "非手机号", "en": "not a mobile"},
    "web.sms.count.refused": {"zh": "被拒", "en": "refused"},
    "web.sms.recipients.group": {"zh": "客户分组", "en": "Customer group"},
    "web.sms.recipients.numbers": {"zh": "号码列表", "en": "List of numbers"},
    "web.sms.recipients.count": {"zh": "{n} 个号码", "en": "{n} numbers"},
    "web.sms.group.all": {"zh": "全部客户", "en": "All customers"},
    "web.sms.group.vip": {"zh": "VIP 客户", "en": "VIP customers"},
    "web.sms.group.company": {"zh": "公司", "en": "Company"},
    "web.sms.numbers.help": {"zh": "每行一个号码", "en": "One number a line"},
    "web.sms.schedule.now": {"zh": "立即发送", "en": "Now"},
    "web.sms.schedule.date": {"zh": "定时发送", "en": "At a date and time"},
    "web.sms.schedule.yearly": {"zh": "每年", "en": "Yearly"},
    "web.sms.schedule.holidays": {"zh": "节假日", "en": "Holidays"},
    "web.sms.schedule.cron": {"zh": "周期", "en": "Recurring"},
    "web.sms.value.product": {"zh": "产品（可选）", "en": "Product (optional)"},
    "web.sms.value.agent": {"zh": "坐席（可选）", "en": "Agent (optional)"},
    "web.sms.value.date": {"zh": "日期（可选）", "en": "Date (optional)"},
    "web.sms.optouts": {"zh": "退订号码", "en": "Opted-out numbers"},
    "web.sms.optouts.empty": {"zh": "没有退订号码", "en": "No opted-out numbers"},
    "web.sms.optout.add": {"zh": "加入退订", "en": "Opt out"},
    "web.sms.optout.source.reply": {"zh": "回复退订", "en": "replied"},
    "web.sms.optout.source.manual": {"zh": "手工加入", "en": "added by hand"},
    "web.sms.error.body": {"zh": "请求内容不是 JSON 对象", "en": "the request body is not a JSON object"},
}


def text(key: str, lang: str = DEFAULT_LANG, **fields: object) -> str:
    """Return the catalog text for ``key`` in ``lang`` ('zh' or 'en'), formatted with ``fields``."""
    if lang not in LANGS:
        raise KeyError(f"language {lang!r} is not one of {LANGS}")
    return CATALOG[key][lang].format(**fields)
