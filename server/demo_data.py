"""Demo data for a Haishu-style "1 district cloud centre + 17 town centres + 288 points" network.
Service items and materials follow publicly published government service guides (一次性告知清单),
but everything here is demo data only and must not be treated as an authoritative guide."""

from __future__ import annotations

from typing import Any

DISTRICT_CENTRE: str = "海曙区政务服务中心（区级云办中心）"

# 海曙区 9 个街道 + 7 个镇 + 1 个乡
_TOWNS: list[str] = [
    "南门街道",
    "江厦街道",
    "西门街道",
    "月湖街道",
    "鼓楼街道",
    "白云街道",
    "段塘街道",
    "望春街道",
    "石碶街道",
    "高桥镇",
    "横街镇",
    "集士港镇",
    "古林镇",
    "洞桥镇",
    "鄞江镇",
    "章水镇",
    "龙观乡",
]

TOWN_CENTRES: list[str] = [f"{t}便民服务中心" for t in _TOWNS]

# Raw place names per town; each becomes "<place>便民服务点".
_POINT_PLACES: dict[str, list[str]] = {
    "南门街道": [
        "紫金社区", "南苑社区", "尹江岸社区", "柳锦社区", "长春社区", "恒春社区",
        "澄浪社区", "万安社区", "苍水社区", "道前社区", "启文社区", "车轿社区",
        "南门社区", "南塘老街商圈", "宁波南站商圈", "南门科创园区",
    ],
    "江厦街道": [
        "和义社区", "郡庙社区", "天封社区", "东渡社区", "灵桥社区", "药行社区",
        "三江口社区", "战船街社区", "江厦桥社区", "开明社区", "天一广场商圈",
        "和义大道商圈",
    ],
    "西门街道": [
        "翠柏社区", "宝善社区", "广仁社区", "西河社区", "新芝社区", "常青藤社区",
        "西成社区", "文昌社区", "永寿社区", "胜丰社区", "望京社区", "西雅社区",
        "西郊社区", "永丰社区", "西门口商圈", "中山西路商圈",
    ],
    "月湖街道": [
        "平桥社区", "青石社区", "镇明社区", "马园社区", "柳汀社区", "云石社区",
        "花果园社区", "湖西社区", "偃月社区", "竹洲社区", "月湖盛园商圈",
        "城隍庙商圈",
    ],
    "鼓楼街道": [
        "孝闻社区", "中山社区", "秀水社区", "公园社区", "后市社区", "呼童社区",
        "县学社区", "鼓楼社区", "府桥社区", "仓桥社区", "鼓楼步行街商圈",
        "中山广场商圈",
    ],
    "白云街道": [
        "安丰社区", "华兴社区", "泰安社区", "白云庄社区", "牡丹社区", "翠馨社区",
        "锦苑社区", "新典社区", "范江岸社区", "文体社区", "白云社区", "柳庄社区",
        "丽园社区", "槐树社区", "万里社区", "环城西路商圈", "白云科创园区",
    ],
    "段塘街道": [
        "南都社区", "兰江社区", "大卿桥社区", "柳西社区", "丹凤社区", "南雅社区",
        "汇丰社区", "南裕社区", "联丰社区", "段塘社区", "长丰社区", "新星社区",
        "西洪社区", "南湖社区", "民和社区", "水凌社区", "长丰商圈", "段塘科技园区",
    ],
    "望春街道": [
        "望春社区", "华光城社区", "秀丽社区", "五里牌社区", "芦港社区", "宁锦社区",
        "新苑社区", "广安社区", "春城社区", "北郊社区", "白杨社区", "望童社区",
        "清风社区", "前丰社区", "仁和社区", "高新社区", "望春工业园区", "印象城商圈",
    ],
    "石碶街道": [
        "冯家村", "星光村", "栎社村", "东杨村", "新张俞村", "前殷村", "横涨村",
        "塘西村", "北渡村", "清垫村", "夏施村", "高家村", "联合村", "隐学寺村",
        "顾家村", "金家漕村", "石碶社区", "雅源社区", "石碶工业园区", "空港物流园区",
        "石碶老街商圈", "石碶商贸城商圈",
    ],
    "高桥镇": [
        "梁祝村", "高桥村", "岐阳村", "新联村", "秀丰村", "民乐村", "长乐村",
        "古庵村", "蒲家村", "后丁村", "宁锋村", "藕池村", "石塘村", "大西坝村",
        "新庄村", "姚江村", "上升村", "横河村", "高桥社区", "高桥工业园区",
        "梁祝文化园区", "高桥商贸城商圈",
    ],
    "横街镇": [
        "横街村", "惠民村", "大雷村", "林村", "万华村", "朱敏村", "爱岭村",
        "凤岙村", "桃源村", "水家村", "前旺村", "周夹村", "孔家村", "翻石渡村",
        "俞家村", "西洋港村", "上庄村", "岙里村", "横街社区", "横街工业园区",
        "凤岙工业园区", "横街商贸街商圈",
    ],
    "集士港镇": [
        "卖面桥村", "翁家桥村", "湖泊村", "万众村", "深溪村", "丰成村", "山下庄村",
        "广德湖村", "集士港村", "勤勇村", "董家跳村", "春华村", "汇头村", "叶家村",
        "上王村", "崇光村", "光明村", "集士港社区", "集士港工业园区", "深溪小微园区",
        "集士港商贸中心商圈", "翁家桥商圈",
    ],
    "古林镇": [
        "古林村", "薛家村", "布政村", "蜃蛟村", "礼嘉桥村", "仲一村", "茂新村",
        "石马塘村", "葑水港村", "戴家村", "蒋家村", "张家潭村", "黄家村", "严家村",
        "林家村", "官庄村", "万兴村", "包家村", "东林寺村", "古林社区",
        "古林工业园区", "西部物流园区", "古林商圈", "蜃蛟商贸街商圈",
    ],
    "洞桥镇": [
        "洞桥村", "百梁桥村", "上水碶村", "宣裴村", "沙港村", "前虞村", "资国村",
        "罗家村", "三李村", "宁峰村", "方家村", "丁家村", "旭东村", "洞桥社区",
        "洞桥工业园区", "洞桥农业园区", "鄞西新材料园区", "百梁桥商圈",
    ],
    "鄞江镇": [
        "光溪村", "悬慈村", "鄞江村", "它山堰村", "东兴村", "建岙村", "晴江岸村",
        "大桥村", "梅园村", "金陆村", "沿山村", "鄞江社区", "鄞江工业园区",
        "鄞江古镇商圈",
    ],
    "章水镇": [
        "章水村", "蜜岩村", "李家坑村", "杖锡村", "樟村", "细岙村", "崔岙村",
        "郑家村", "大皎村", "茅镬村", "周公宅村", "皎口村", "北溪村", "章水社区",
    ],
    "龙观乡": [
        "龙观村", "李岙村", "雪岙村", "大路村", "五龙潭村", "观顶村", "桓村",
        "龙峰村", "龙观社区",
    ],
}

EXTENSION_POINTS: dict[str, list[str]] = {
    f"{town}便民服务中心": [f"{place}便民服务点" for place in places]
    for town, places in _POINT_PLACES.items()
}

# (code, name); code doubles as the queue ticket prefix.
DEPARTMENTS: list[tuple[str, str]] = [
    ("MZ", "民政"),
    ("SB", "社保"),
    ("YB", "医保"),
    ("GA", "公安"),
    ("SC", "市场监管"),
    ("ZJ", "住建"),
    ("GJ", "住房公积金"),
    ("WJ", "卫健"),
    ("TR", "退役军人事务"),
    ("CL", "残联"),
]


def _m(name: str, required: bool = True, note: str = "") -> dict[str, Any]:
    return {"name": name, "required": required, "note": note}


ITEMS: list[dict[str, Any]] = [
    # ------------------------------------------------------------------ 民政
    {
        "code": "MZ-001", "name": "高龄津贴申领", "initials": "gljtsl",
        "department": "MZ", "level": "town",
        "description": "为年满80周岁的本区户籍老年人申领高龄津贴。",
        "materials": [
            _m("身份证", True, "原件"),
            _m("户口簿", True, "原件"),
            _m("社保卡", True, "用于津贴发放，需已激活金融功能"),
            _m("社区证明", True, "由户籍所在社区（村）出具"),
        ],
    },
    {
        "code": "MZ-002", "name": "最低生活保障申请", "initials": "zdshbzsq",
        "department": "MZ", "level": "town",
        "description": "家庭人均收入低于当地低保标准且财产符合规定的家庭申请最低生活保障。",
        "materials": [
            _m("最低生活保障申请书", True, "申请人签字"),
            _m("申请人及共同生活家庭成员身份证、户口簿", True, "原件"),
            _m("家庭经济状况核对授权书", True, "家庭成员本人签字"),
            _m("家庭成员收入证明", True, "在职人员由单位出具"),
            _m("残疾人证、病历等特殊情况证明", False, "有重病、重残等情况的提供"),
            _m("银行账户信息", False, "社保卡已激活金融功能的可不提供"),
        ],
    },
    {
        "code": "MZ-003", "name": "临时救助申请", "initials": "lsjzsq",
        "department": "MZ", "level": "town",
        "description": "因突发事件、意外伤害、重大疾病等导致基本生活暂时出现严重困难的家庭申请临时救助。",
        "materials": [
            _m("临时救助申请书", True, "申请人签字"),
            _m("申请人身份证、户口簿", True, "原件"),
            _m("家庭经济状况核对授权书", True, ""),
            _m("遭遇困难的相关证明", True, "如医疗费用票据、事故证明等"),
            _m("银行账户信息", False, ""),
        ],
    },
    {
        "code": "MZ-004", "name": "结婚登记预约", "initials": "jhdjyy",
        "department": "MZ", "level": "district",
        "description": "预约婚姻登记处办理内地居民结婚登记的时段。",
        "materials": [
            _m("双方居民身份证", True, "原件"),
            _m("双方户口簿", False, "已实行婚姻登记全国通办的可仅凭身份证"),
            _m("近期2寸半身免冠合影照片", False, "3张，可现场拍摄"),
            _m("离婚证或配偶死亡证明", False, "离异或丧偶的提供"),
        ],
    },
    {
        "code": "MZ-005", "name": "离婚登记", "initials": "lhdj",
        "department": "MZ", "level": "district",
        "description": "自愿离婚的内地居民双方共同到婚姻登记机关申请离婚登记。",
        "materials": [
            _m("双方居民身份证", True, "原件"),
            _m("双方户口簿", True, "原件"),
            _m("结婚证", True, "两本原件"),
            _m("离婚协议书", True, "一式三份，双方签字"),
            _m("近期2寸单人半身免冠照片", True, "每人2张"),
        ],
    },
    {
        "code": "MZ-006", "name": "补领婚姻登记证", "initials": "blhydjz",
        "department": "MZ", "level": "district",
        "description": "结婚证、离婚证遗失或损毁的当事人申请补领婚姻登记证。",
        "materials": [
            _m("本人居民身份证", True, "原件"),
            _m("本人户口簿", True, "原件"),
            _m("近期2寸半身免冠照片", True, "补结婚证需双方合影3张"),
            _m("婚姻登记档案证明", False, "原登记机关可查档的无需提供"),
        ],
    },
    {
        "code": "MZ-007", "name": "老年人优待证办理", "initials": "lnrydzbl",
        "department": "MZ", "level": "town",
        "description": "年满60周岁的老年人办理老年人优待证，享受公共服务优待。",
        "materials": [
            _m("身份证", True, "原件"),
            _m("近期1寸免冠照片", False, "1张，可现场拍摄"),
            _m("居住证", False, "非本市户籍老年人提供"),
        ],
    },
    {
        "code": "MZ-008", "name": "残疾人两项补贴申请", "initials": "cjrlxbtsq",
        "department": "MZ", "level": "town",
        "description": "申请困难残疾人生活补贴和重度残疾人护理补贴。",
        "materials": [
            _m("残疾人两项补贴申请审批表", True, ""),
            _m("身份证", True, "原件"),
            _m("户口簿", True, "原件"),
            _m("第二代残疾人证", True, "原件"),
            _m("低保或低保边缘证明", False, "申请困难残疾人生活补贴的提供"),
            _m("银行账户信息", True, "本人社保卡或银行卡"),
        ],
    },
    {
        "code": "MZ-009", "name": "特困人员救助供养申请", "initials": "tkryjzgysq",
        "department": "MZ", "level": "town",
        "description": "无劳动能力、无生活来源、无法定赡养抚养扶养义务人的老年人、残疾人和未成年人申请救助供养。",
        "materials": [
            _m("特困人员救助供养申请书", True, "本人或代理人签字"),
            _m("身份证、户口簿", True, "原件"),
            _m("家庭经济状况核对授权书", True, ""),
            _m("残疾人证或丧失劳动能力证明", False, "因残疾或疾病申请的提供"),
            _m("近期1寸免冠照片", False, "1张"),
        ],
    },
    {
        "code": "MZ-010", "name": "社会团体成立登记", "initials": "shttcldj",
        "department": "MZ", "level": "district",
        "description": "在区民政局申请成立区级社会团体。",
        "materials": [
            _m("社会团体成立登记申请书", True, "拟任负责人签字"),
            _m("业务主管单位批准文件", False, "直接登记类社会团体无需提供"),
            _m("章程草案", True, "经会员大会通过"),
            _m("住所使用权证明", True, "产权证明或租赁协议"),
            _m("验资报告", True, "注册资金证明"),
            _m("拟任负责人基本情况及身份证明", True, ""),
            _m("发起人和会员名单", True, ""),
        ],
    },
    {
        "code": "MZ-011", "name": "养老机构备案", "initials": "yljgba",
        "department": "MZ", "level": "district",
        "description": "依法登记的养老机构在收住老年人后向区民政部门办理备案。",
        "materials": [
            _m("养老机构备案书", True, ""),
            _m("营业执照或民办非企业单位登记证书", True, "复印件加盖公章"),
            _m("服务场所产权证明或租赁合同", True, ""),
            _m("消防安全检查合格证明或承诺书", True, ""),
            _m("食品经营许可证", False, "内设食堂的提供"),
            _m("养老机构备案承诺书", True, ""),
        ],
    },
    {
        "code": "MZ-012", "name": "惠民殡葬补助申领", "initials": "hmbzbzsl",
        "department": "MZ", "level": "town",
        "description": "本区户籍逝者家属申领基本殡葬服务费用减免补助。",
        "materials": [
            _m("居民死亡医学证明", True, "原件"),
            _m("火化证明", True, "原件"),
            _m("逝者户口簿", True, "注销页"),
            _m("申领人身份证", True, "原件"),
            _m("申领人银行卡", True, ""),
            _m("与逝者关系证明", False, "户口簿无法体现关系的提供"),
        ],
    },
    # ------------------------------------------------------------------ 社保
    {
        "code": "SB-001", "name": "灵活就业人员参保登记", "initials": "lhjyrycbdj",
        "department": "SB", "level": "town",
        "description": "无雇工的个体工商户、非全日制从业人员等以灵活就业人员身份参加职工基本养老保险。",
        "materials": [
            _m("身份证", True, "原件"),
            _m("灵活就业人员参保登记表", True, ""),
            _m("银行卡", True, "用于签订委托扣款协议"),
            _m("居住证", False, "非本市户籍人员提供"),
        ],
    },
    {
        "code": "SB-002", "name": "社保卡补换", "initials": "sbkbh",
        "department": "SB", "level": "town",
        "description": "社会保障卡遗失、损坏或有效期满时申请补卡或换卡。",
        "materials": [
            _m("身份证", True, "原件"),
            _m("原社会保障卡", False, "换卡时交回，挂失补卡无需提供"),
            _m("近期免冠彩色照片", False, "可现场采集"),
            _m("代办人身份证", False, "委托他人代办的提供"),
        ],
    },
    {
        "code": "SB-003", "name": "职工退休申请", "initials": "zgtxsq",
        "department": "SB", "level": "district",
        "description": "参加职工基本养老保险且达到法定退休年龄的人员申请办理退休并核定养老金。",
        "materials": [
            _m("身份证", True, "原件"),
            _m("户口簿", True, "原件"),
            _m("职工人事档案", True, "由档案保管单位提交"),
            _m("社保卡", True, "需已激活金融功能"),
            _m("近期1寸免冠照片", False, "1张"),
            _m("特殊工种或因病提前退休相关材料", False, "申请提前退休的提供"),
        ],
    },
    {
        "code": "SB-004", "name": "失业保险金申领", "initials": "sybxjsl",
        "department": "SB", "level": "district",
        "description": "非因本人意愿中断就业且符合条件的失业人员申领失业保险金。",
        "materials": [
            _m("身份证", True, "原件"),
            _m("社保卡", True, "需已激活金融功能"),
            _m("解除或终止劳动合同证明", True, "单位已网上报送的可免于提供"),
            _m("失业登记证明", False, "可与申领同步办理"),
        ],
    },
    {
        "code": "SB-005", "name": "城乡居民基本养老保险参保登记", "initials": "cxjmjbylbxcbdj",
        "department": "SB", "level": "town",
        "description": "年满16周岁未参加职工养老保险的本地户籍居民参加城乡居民基本养老保险。",
        "materials": [
            _m("身份证", True, "原件"),
            _m("户口簿", True, "原件"),
            _m("城乡居民基本养老保险参保登记表", True, ""),
            _m("银行卡", False, "社保卡已激活金融功能的可不提供"),
        ],
    },
    {
        "code": "SB-006", "name": "个人参保证明打印", "initials": "grcbzmdy",
        "department": "SB", "level": "town",
        "description": "打印个人社会保险参保缴费证明。",
        "materials": [
            _m("身份证或社保卡", True, "原件"),
            _m("代办人身份证及委托书", False, "委托他人代办的提供"),
        ],
    },
    {
        "code": "SB-007", "name": "就业创业证申领", "initials": "jycyzsl",
        "department": "SB", "level": "town",
        "description": "劳动年龄内的城乡劳动者申领就业创业证。",
        "materials": [
            _m("身份证", True, "原件"),
            _m("居住证", False, "非本市户籍人员提供"),
            _m("毕业证书", False, "高校毕业生提供"),
            _m("近期1寸免冠照片", False, "1张"),
        ],
    },
    {
        "code": "SB-008", "name": "养老保险关系转移接续", "initials": "ylbxgxzyjx",
        "department": "SB", "level": "district",
        "description": "跨统筹地区流动就业人员办理基本养老保险关系转入。",
        "materials": [
            _m("身份证", True, "原件"),
            _m("基本养老保险关系转移接续申请表", True, ""),
            _m("参保缴费凭证", True, "由转出地社保经办机构出具"),
        ],
    },
    {
        "code": "SB-009", "name": "工伤认定申请", "initials": "gsrdsq",
        "department": "SB", "level": "district",
        "description": "职工发生事故伤害或被诊断为职业病后由用人单位或本人提出工伤认定申请。",
        "materials": [
            _m("工伤认定申请表", True, ""),
            _m("与用人单位存在劳动关系的证明材料", True, "劳动合同等"),
            _m("医疗诊断证明或职业病诊断证明书", True, "原件"),
            _m("受伤职工身份证", True, "复印件"),
            _m("事故调查报告或交通事故责任认定书", False, "因交通事故等情形提供"),
            _m("证人证言", False, ""),
        ],
    },
    {
        "code": "SB-010", "name": "一次性创业补贴申领", "initials": "ycxcybtsl",
        "department": "SB", "level": "district",
        "description": "符合条件的高校毕业生、就业困难人员等首次创业申领一次性创业补贴。",
        "materials": [
            _m("一次性创业补贴申请表", True, ""),
            _m("身份证", True, "原件"),
            _m("营业执照", True, "原件"),
            _m("社会保险缴费证明", False, "系统可查询的免于提供"),
            _m("银行账户信息", True, "企业或本人账户"),
        ],
    },
    {
        "code": "SB-011", "name": "丧葬补助金和抚恤金申领", "initials": "szbzjhfxjsl",
        "department": "SB", "level": "district",
        "description": "参保人员因病或非因工死亡后由其遗属申领丧葬补助金和抚恤金。",
        "materials": [
            _m("居民死亡医学证明或火化证明", True, "原件"),
            _m("死者身份证或社保卡", True, ""),
            _m("申领人身份证", True, "原件"),
            _m("直系亲属关系证明", True, "户口簿或公证书等"),
            _m("申领人银行卡", True, ""),
        ],
    },
    # ------------------------------------------------------------------ 医保
    {
        "code": "YB-001", "name": "城乡居民医保参保登记", "initials": "cxjmybcbdj",
        "department": "YB", "level": "town",
        "description": "未参加职工医保的城乡居民办理城乡居民基本医疗保险参保登记。",
        "materials": [
            _m("身份证或户口簿", True, "原件"),
            _m("居住证", False, "非本市户籍人员提供"),
            _m("学生证", False, "在校学生提供"),
            _m("出生医学证明", False, "新生儿提供"),
        ],
    },
    {
        "code": "YB-002", "name": "异地就医备案", "initials": "ydjyba",
        "department": "YB", "level": "town",
        "description": "异地长期居住、常驻异地工作或转外就医人员办理跨省异地就医备案。",
        "materials": [
            _m("身份证或社保卡", True, "原件"),
            _m("异地就医备案登记表", True, ""),
            _m("异地长期居住证明或个人承诺书", False, "异地长期居住人员提供"),
            _m("工作派驻证明", False, "常驻异地工作人员提供"),
            _m("转诊证明", False, "转外就医人员提供"),
        ],
    },
    {
        "code": "YB-003", "name": "生育津贴申领", "initials": "syjtsl",
        "department": "YB", "level": "district",
        "description": "参加职工生育保险的女职工生育后申领生育津贴。",
        "materials": [
            _m("身份证", True, "原件"),
            _m("出生医学证明", True, "原件"),
            _m("出院小结或住院病历", True, "复印件"),
            _m("用人单位银行账户信息", True, "津贴拨付至用人单位"),
        ],
    },
    {
        "code": "YB-004", "name": "医疗费用零星报销", "initials": "ylfylxbx",
        "department": "YB", "level": "district",
        "description": "参保人员因急诊、未持卡等原因全额垫付的医疗费用申请手工报销。",
        "materials": [
            _m("身份证或社保卡", True, "原件"),
            _m("医疗费用原始发票", True, "原件"),
            _m("费用明细清单", True, ""),
            _m("门诊病历或出院小结", True, ""),
            _m("急诊证明", False, "异地急诊就医提供"),
            _m("银行卡", True, "本人账户"),
        ],
    },
    {
        "code": "YB-005", "name": "门诊慢特病待遇认定", "initials": "mzmtbdyrd",
        "department": "YB", "level": "district",
        "description": "患有规定门诊慢性病、特殊病种的参保人员申请待遇资格认定。",
        "materials": [
            _m("身份证或社保卡", True, "原件"),
            _m("门诊慢特病认定申请表", True, "由定点医疗机构医师填写"),
            _m("近期病历及检查报告", True, ""),
            _m("诊断证明书", False, "部分病种需提供"),
        ],
    },
    {
        "code": "YB-006", "name": "医保关系转移接续", "initials": "ybgxzyjx",
        "department": "YB", "level": "town",
        "description": "跨统筹地区流动人员办理基本医疗保险关系转移接续。",
        "materials": [
            _m("身份证", True, "原件"),
            _m("基本医疗保险参保信息凭证", True, "由转出地医保经办机构出具"),
            _m("基本医疗保险关系转移接续申请表", True, ""),
        ],
    },
    # ------------------------------------------------------------------ 公安
    {
        "code": "GA-001", "name": "居住证办理", "initials": "jzzbl",
        "department": "GA", "level": "town",
        "description": "居住登记满半年且有合法稳定就业、住所或连续就读的流动人口申领居住证。",
        "materials": [
            _m("身份证", True, "原件"),
            _m("居住登记凭证", True, "居住登记满半年"),
            _m("合法稳定住所、就业或就读证明", True, "房产证、租赁合同、劳动合同或学籍证明之一"),
            _m("近期免冠照片", False, "可现场采集"),
        ],
    },
    {
        "code": "GA-002", "name": "流动人口居住登记", "initials": "ldrkjzdj",
        "department": "GA", "level": "town",
        "description": "离开常住户口所在地到本区居住的人员办理居住登记。",
        "materials": [
            _m("身份证", True, "原件"),
            _m("居住处所证明", True, "房屋租赁合同或房东证明"),
            _m("单位就业证明", False, "由单位集体宿舍居住的提供"),
        ],
    },
    {
        "code": "GA-003", "name": "居民身份证换领", "initials": "jmsfzhl",
        "department": "GA", "level": "district",
        "description": "居民身份证有效期满或证件损坏、信息变更时申请换领。",
        "materials": [
            _m("原居民身份证", True, "原件"),
            _m("户口簿", False, "信息变更时提供"),
            _m("近期免冠照片", False, "现场采集"),
        ],
    },
    {
        "code": "GA-004", "name": "新生儿出生登记", "initials": "xsecsdj",
        "department": "GA", "level": "district",
        "description": "为新生儿申报出生登记户口。",
        "materials": [
            _m("出生医学证明", True, "原件"),
            _m("父母双方身份证", True, "原件"),
            _m("父（母）户口簿", True, "随父或随母落户一方的户口簿"),
            _m("父母结婚证", False, "非婚生育的提供相关说明材料"),
        ],
    },
    {
        "code": "GA-005", "name": "市内户口迁移", "initials": "snhkqy",
        "department": "GA", "level": "district",
        "description": "在本市范围内因购房等原因办理户口迁移。",
        "materials": [
            _m("迁移人身份证", True, "原件"),
            _m("迁出地户口簿", True, "原件"),
            _m("迁入地不动产权证书", True, "原件"),
            _m("迁入地户主同意证明", False, "投靠他人户内落户的提供"),
        ],
    },
    {
        "code": "GA-006", "name": "无犯罪记录证明开具", "initials": "wfzjlzmkj",
        "department": "GA", "level": "district",
        "description": "为个人开具在本地户籍或居住期间的无犯罪记录证明。",
        "materials": [
            _m("身份证", True, "原件"),
            _m("户口簿或居住证", False, "必要时提供"),
            _m("授权委托书及代办人身份证", False, "委托他人代办的提供"),
        ],
    },
    # ------------------------------------------------------------------ 市场监管
    {
        "code": "SC-001", "name": "个体工商户设立登记", "initials": "gtgshsldj",
        "department": "SC", "level": "town",
        "description": "申请设立个体工商户并领取营业执照。",
        "materials": [
            _m("个体工商户登记（备案）申请书", True, "经营者签字"),
            _m("经营者身份证", True, "原件"),
            _m("经营场所使用证明", True, "房产证明或租赁合同"),
            _m("委托代理人身份证及委托书", False, "委托他人办理的提供"),
            _m("前置许可文件", False, "经营项目涉及前置许可的提供"),
        ],
    },
    {
        "code": "SC-002", "name": "个体工商户变更登记", "initials": "gtgshbgdj",
        "department": "SC", "level": "town",
        "description": "个体工商户变更名称、经营者、经营场所、经营范围等登记事项。",
        "materials": [
            _m("个体工商户变更登记（备案）申请书", True, "经营者签字"),
            _m("经营者身份证", True, "原件"),
            _m("营业执照正副本", True, "原件"),
            _m("新经营场所使用证明", False, "变更经营场所的提供"),
        ],
    },
    {
        "code": "SC-003", "name": "个体工商户注销", "initials": "gtgshzx",
        "department": "SC", "level": "town",
        "description": "个体工商户停止经营后申请注销登记。",
        "materials": [
            _m("个体工商户注销登记申请书", True, "经营者签字"),
            _m("营业执照正副本", True, "原件"),
            _m("经营者身份证", True, "原件"),
            _m("清税证明", False, "已实现信息共享的免于提交"),
        ],
    },
    {
        "code": "SC-004", "name": "食品经营许可", "initials": "spjyxk",
        "department": "SC", "level": "district",
        "description": "从事食品销售和餐饮服务的经营者申请食品经营许可证。",
        "materials": [
            _m("食品经营许可申请书", True, ""),
            _m("营业执照", True, "复印件"),
            _m("法定代表人或负责人身份证", True, "原件"),
            _m("主要设备设施布局和操作流程文件", True, ""),
            _m("食品安全管理制度", True, ""),
            _m("食品安全管理人员证明", False, "按规定需配备的提供"),
        ],
    },
    {
        "code": "SC-005", "name": "食品小作坊登记", "initials": "spxzfdj",
        "department": "SC", "level": "district",
        "description": "从事传统特色食品加工的小作坊申请登记证。",
        "materials": [
            _m("食品小作坊登记申请书", True, ""),
            _m("营业执照", True, "复印件"),
            _m("经营者身份证", True, "原件"),
            _m("生产场所平面布局图", True, ""),
            _m("从业人员健康证明", True, ""),
        ],
    },
    {
        "code": "SC-006", "name": "营业执照遗失补领", "initials": "yyzzysbl",
        "department": "SC", "level": "district",
        "description": "营业执照遗失或损坏后申请补领。",
        "materials": [
            _m("营业执照补领申请书", True, ""),
            _m("法定代表人或经营者身份证", True, "原件"),
            _m("遗失公告", False, "通过国家企业信用信息公示系统发布"),
        ],
    },
    # ------------------------------------------------------------------ 住建
    {
        "code": "ZJ-001", "name": "公共租赁住房申请", "initials": "ggzlzfsq",
        "department": "ZJ", "level": "town",
        "description": "住房困难的城镇中低收入家庭、新就业人员和外来务工人员申请公共租赁住房。",
        "materials": [
            _m("公共租赁住房申请审批表", True, ""),
            _m("申请人及家庭成员身份证、户口簿", True, "原件"),
            _m("婚姻状况证明", True, "结婚证或离婚证"),
            _m("家庭收入证明", True, ""),
            _m("住房情况承诺书", True, ""),
            _m("劳动合同及社保缴纳证明", False, "外来务工人员提供"),
        ],
    },
    {
        "code": "ZJ-002", "name": "住房租赁补贴申请", "initials": "zfzlbtsq",
        "department": "ZJ", "level": "town",
        "description": "符合条件的住房困难家庭申请住房租赁货币补贴。",
        "materials": [
            _m("住房租赁补贴申请表", True, ""),
            _m("申请人及家庭成员身份证、户口簿", True, "原件"),
            _m("房屋租赁合同", True, ""),
            _m("低保或低收入家庭证明", False, "低保、低收入家庭提供"),
            _m("银行卡", True, "申请人本人账户"),
        ],
    },
    {
        "code": "ZJ-003", "name": "房屋租赁登记备案", "initials": "fwzldjba",
        "department": "ZJ", "level": "district",
        "description": "出租人与承租人签订房屋租赁合同后办理登记备案。",
        "materials": [
            _m("房屋租赁合同", True, "原件"),
            _m("出租人和承租人身份证", True, "原件"),
            _m("不动产权证书", True, "原件"),
            _m("授权委托书", False, "委托他人办理的提供"),
        ],
    },
    # ------------------------------------------------------------------ 住房公积金
    {
        "code": "GJ-001", "name": "住房公积金提取", "initials": "zfgjjtq",
        "department": "GJ", "level": "district",
        "description": "缴存职工因购房、租房、退休等情形申请提取住房公积金。",
        "materials": [
            _m("身份证", True, "原件"),
            _m("本人银行卡", True, "一类借记卡"),
            _m("提取事由证明材料", True, "购房合同、租房合同或退休证明等，按提取类型提供"),
            _m("结婚证", False, "配偶共同提取的提供"),
        ],
    },
    {
        "code": "GJ-002", "name": "住房公积金缴存证明出具", "initials": "zfgjjjczmcj",
        "department": "GJ", "level": "town",
        "description": "出具个人住房公积金缴存情况证明。",
        "materials": [
            _m("身份证", True, "原件"),
        ],
    },
    {
        "code": "GJ-003", "name": "灵活就业人员公积金缴存登记", "initials": "lhjyrygjjjcdj",
        "department": "GJ", "level": "district",
        "description": "个体工商户、自由职业者等灵活就业人员自愿缴存住房公积金。",
        "materials": [
            _m("身份证", True, "原件"),
            _m("灵活就业人员住房公积金缴存登记表", True, ""),
            _m("本人银行卡", True, "用于签订委托扣款协议"),
        ],
    },
    # ------------------------------------------------------------------ 卫健
    {
        "code": "WJ-001", "name": "出生医学证明补发", "initials": "csyxzmbf",
        "department": "WJ", "level": "district",
        "description": "出生医学证明遗失后由父母申请补发。",
        "materials": [
            _m("出生医学证明补发申请表", True, ""),
            _m("父母双方身份证", True, "原件"),
            _m("新生儿户口簿", False, "已落户的提供"),
            _m("亲子鉴定证明", False, "助产机构无法确认亲子关系时提供"),
        ],
    },
    {
        "code": "WJ-002", "name": "生育登记", "initials": "sydj",
        "department": "WJ", "level": "town",
        "description": "生育子女的夫妻办理生育登记。",
        "materials": [
            _m("夫妻双方身份证", True, "原件"),
            _m("结婚证", False, "已婚的提供"),
            _m("户口簿", False, ""),
        ],
    },
    {
        "code": "WJ-003", "name": "计划生育家庭奖励扶助申请", "initials": "jhsyjtjlfzsq",
        "department": "WJ", "level": "town",
        "description": "符合条件的农村部分计划生育家庭夫妻申请奖励扶助金。",
        "materials": [
            _m("奖励扶助对象申请表", True, ""),
            _m("身份证、户口簿", True, "原件"),
            _m("独生子女父母光荣证或相关证明", True, ""),
            _m("银行卡", True, "本人账户"),
        ],
    },
    # ------------------------------------------------------------------ 退役军人事务
    {
        "code": "TR-001", "name": "退役军人优待证申领", "initials": "tyjrydzsl",
        "department": "TR", "level": "town",
        "description": "退役军人和其他优抚对象申领优待证。",
        "materials": [
            _m("身份证", True, "原件"),
            _m("退役证件", True, "退伍证、转业证等"),
            _m("近期2寸免冠彩色照片", False, "可现场采集"),
        ],
    },
    {
        "code": "TR-002", "name": "光荣牌悬挂申请", "initials": "grpxgsq",
        "department": "TR", "level": "town",
        "description": "为现役军人家庭、退役军人家庭和烈士家庭悬挂光荣牌。",
        "materials": [
            _m("身份证", True, "原件"),
            _m("户口簿", True, "原件"),
            _m("退役证件或入伍通知书", True, "按家庭类型提供"),
        ],
    },
    {
        "code": "TR-003", "name": "优抚对象定期抚恤补助申请", "initials": "yfdxdqfxbzsq",
        "department": "TR", "level": "district",
        "description": "符合条件的优抚对象申请定期抚恤金或定期生活补助。",
        "materials": [
            _m("定期抚恤补助申请表", True, ""),
            _m("身份证、户口簿", True, "原件"),
            _m("退役证件", True, ""),
            _m("残疾军人证或参战参试证明", False, "相关优抚对象提供"),
            _m("银行卡", True, "本人账户"),
        ],
    },
    # ------------------------------------------------------------------ 残联
    {
        "code": "CL-001", "name": "残疾人证申领", "initials": "cjrzsl",
        "department": "CL", "level": "town",
        "description": "符合残疾标准的人员申请评定残疾等级并申领残疾人证。",
        "materials": [
            _m("身份证", True, "原件"),
            _m("户口簿", True, "原件"),
            _m("近期2寸免冠白底彩色照片", True, "3张"),
            _m("残疾人证申请表", True, ""),
            _m("相关病历资料", False, "有病历的提供"),
        ],
    },
    {
        "code": "CL-002", "name": "残疾人证换领", "initials": "cjrzhl",
        "department": "CL", "level": "town",
        "description": "残疾人证有效期满或残疾状况变化时申请换领。",
        "materials": [
            _m("原残疾人证", True, "原件"),
            _m("身份证", True, "原件"),
            _m("近期2寸免冠白底彩色照片", False, "2张"),
        ],
    },
    {
        "code": "CL-003", "name": "残疾人辅助器具适配申请", "initials": "cjrfzqjspsq",
        "department": "CL", "level": "town",
        "description": "持证残疾人申请基本型辅助器具适配补贴。",
        "materials": [
            _m("残疾人证", True, "原件"),
            _m("身份证", True, "原件"),
            _m("辅助器具适配申请表", True, ""),
            _m("医疗诊断证明", False, "部分器具需提供"),
        ],
    },
    {
        "code": "CL-004", "name": "残疾人机动轮椅车燃油补贴申领", "initials": "cjrjdlycrybtsl",
        "department": "CL", "level": "district",
        "description": "下肢残疾人驾驶机动轮椅车申领燃油补贴。",
        "materials": [
            _m("残疾人证", True, "原件"),
            _m("身份证", True, "原件"),
            _m("机动车驾驶证", True, "原件"),
            _m("机动轮椅车行驶证", True, "原件"),
            _m("银行卡", True, "本人账户"),
        ],
    },
]

# ------------------------------------------------------------------ items the 一事联办 bundles need
ITEMS.extend([
    {
        "code": "GA-007", "name": "死亡人员户口注销", "initials": "swryhkzx",
        "department": "GA", "level": "district",
        "description": "公民死亡后，由其亲属申报注销常住户口。",
        "materials": [
            _m("居民死亡医学证明", True, "原件"),
            _m("逝者户口簿", True, "原件"),
            _m("逝者居民身份证", False, "有的交回"),
            _m("申领人身份证", True, "申报人本人"),
        ],
    },
    {
        "code": "GA-008", "name": "公章刻制备案", "initials": "gzkzba",
        "department": "GA", "level": "district",
        "description": "新设立的个体工商户、企业刻制公章并备案。",
        "materials": [
            _m("营业执照", True, "同步办理的可免交"),
            _m("经营者身份证", True, "原件"),
            _m("印章印模", False, "刻章单位提供"),
        ],
    },
    {
        "code": "SB-012", "name": "社会保障卡申领", "initials": "shbzksl",
        "department": "SB", "level": "town",
        "description": "首次申领社会保障卡（含新生儿）。",
        "materials": [
            _m("出生医学证明", False, "新生儿提供"),
            _m("户口簿", True, "新生儿已落户的户口簿"),
            _m("监护人身份证", True, "原件"),
            _m("近期免冠彩色照片", False, "新生儿可不提供"),
        ],
    },
    {
        "code": "YB-007", "name": "退休人员医保待遇核定", "initials": "txryybdyhd",
        "department": "YB", "level": "district",
        "description": "职工退休时核定其基本医疗保险缴费年限和退休人员医保待遇。",
        "materials": [
            _m("身份证", True, "原件"),
            _m("社保卡", True, ""),
            _m("职工退休审批表", True, "同步办理的可免交"),
        ],
    },
])

# 一事联办: several items handled as one case, served in the order given (by department in
# turn where no window serves them all). Real bundles of the kind Zhejiang's 高效办成一件事 lists.
BUNDLES: list[dict[str, Any]] = [
    {
        "code": "LB-001", "name": "流动人口居住一件事",
        "description": "来区居住的流动人口一次办理居住登记、房屋租赁备案、居住证和就业创业证。",
        "items": ["GA-002", "ZJ-003", "GA-001", "SB-007"],
    },
    {
        "code": "LB-002", "name": "新生儿出生一件事",
        "description": "新生儿出生后一次办理户口登记、城乡居民医保参保和社会保障卡申领。",
        "items": ["GA-004", "YB-001", "SB-012"],
    },
    {
        "code": "LB-003", "name": "开办餐饮店一件事",
        "description": "开办小餐饮店一次办理营业执照、食品经营许可和公章刻制备案。",
        "items": ["SC-001", "SC-004", "GA-008"],
    },
    {
        "code": "LB-004", "name": "退休一件事",
        "description": "职工退休一次办理退休审批、退休人员医保待遇核定和住房公积金退休提取。",
        "items": ["SB-003", "YB-007", "GJ-001"],
    },
    {
        "code": "LB-005", "name": "身后事一件事",
        "description": "亲属一次办理惠民殡葬补助、丧葬补助金和抚恤金、户口注销和公积金提取。",
        "items": ["MZ-012", "SB-011", "GA-007", "GJ-001"],
    },
]

# What an item issues that a later item of a bundle asks for: passed on inside the government
# (居住登记 → 居住登记凭证 for the 居住证; 设立登记 → 营业执照 for the 食品经营许可 and the 公章).
PRODUCES: dict[str, list[str]] = {
    "GA-002": ["居住登记凭证"],
    "GA-001": ["居住证"],
    "GA-004": ["户口簿"],
    "SC-001": ["营业执照"],
    "SC-004": ["食品经营许可证"],
    "SB-003": ["职工退休审批表"],
}

# ---------------------------------------------------------------- sanity checks
_DEPT_CODES = {code for code, _ in DEPARTMENTS}
_ALL_POINTS = [p for points in EXTENSION_POINTS.values() for p in points]

assert len(TOWN_CENTRES) == 17 and len(set(TOWN_CENTRES)) == 17
assert list(EXTENSION_POINTS) == TOWN_CENTRES
assert len(_ALL_POINTS) == 288, len(_ALL_POINTS)
assert len(set(_ALL_POINTS)) == len(_ALL_POINTS), "duplicate extension point names"
assert len(_DEPT_CODES) == len(DEPARTMENTS)
assert all(len(c) == 2 and c.isupper() for c in _DEPT_CODES)
assert len(ITEMS) >= 45
assert len({i["code"] for i in ITEMS}) == len(ITEMS), "duplicate item codes"
assert all(i["department"] in _DEPT_CODES for i in ITEMS)
assert all(i["code"].startswith(i["department"] + "-") for i in ITEMS)
assert all(i["level"] in ("district", "town") for i in ITEMS)
assert all(1 <= len(i["materials"]) <= 7 for i in ITEMS)
assert len({b["code"] for b in BUNDLES}) == len(BUNDLES)
assert set(PRODUCES) <= {i["code"] for i in ITEMS}
assert all(code in {i["code"] for i in ITEMS} for b in BUNDLES for code in b["items"])
assert all(
    i["initials"].isascii() and i["initials"].islower() and len(i["initials"]) == len(i["name"])
    for i in ITEMS
)


# 证照到期提醒 (server/domain/certificates.py): certificate types, the item that renews each and
# the days before expiry their holders are texted.
CERTIFICATE_TYPES: list[dict[str, Any]] = [
    {"name": "食品经营许可证", "item": "SC-004", "reminder_days": [90, 30, 7]},
    {"name": "居住证", "item": "GA-001", "reminder_days": [30, 7]},
    {"name": "老年人优待证", "item": "MZ-007", "reminder_days": [30, 7]},
    {"name": "社会保障卡", "item": "SB-002", "reminder_days": [60, 15]},
]

# Demo holders (`yunbang seed --demo` only, with expiries counted from the day it runs): the
# names and numbers are made up; the phones are in the 170 range, used for no real subscriber.
DEMO_CERTIFICATES: list[dict[str, Any]] = [
    {"type": "食品经营许可证", "number": "JY13302030012871", "holder": "海曙区鼓楼小吃店", "phone": "17000000001", "in_days": 6},
    {"type": "食品经营许可证", "number": "JY13302030020456", "holder": "宁波市海曙区月湖茶餐厅", "phone": "17000000002", "in_days": 26},
    {"type": "食品经营许可证", "number": "JY13302030031190", "holder": "海曙区白云面馆", "phone": "17000000003", "in_days": 75},
    {"type": "食品经营许可证", "number": "JY13302030045512", "holder": "海曙区段塘烘焙坊", "phone": "17000000004", "in_days": 180},
    {"type": "居住证", "number": "330203202400118", "holder": "张晓梅", "phone": "17000000005", "in_days": 12},
    {"type": "居住证", "number": "330203202400362", "holder": "刘建国", "phone": "17000000006", "in_days": 29},
    {"type": "老年人优待证", "number": "YD3302030001923", "holder": "王桂英", "phone": "17000000007", "in_days": 4},
    {"type": "社会保障卡", "number": "SSC330203887612", "holder": "陈立", "phone": "17000000008", "in_days": 40},
]
