//! The Chinese vocabulary of the simulated city: unit names built from
//! districts, bureaus and their subordinate institutions, project topics,
//! performance indicators and audit problem types. It owns only words and the
//! pure functions that combine them; every random choice is the generator's.

/// Districts and counties of the city; the first stands for the city level.
const DISTRICTS: [&str; 13] = [
    "济南市",
    "历下区",
    "市中区",
    "槐荫区",
    "天桥区",
    "历城区",
    "长清区",
    "章丘区",
    "济阳区",
    "莱芜区",
    "钢城区",
    "平阴县",
    "商河县",
];

/// Bureaus every district has.
const BUREAUS: [&str; 30] = [
    "教育局",
    "卫生健康委员会",
    "民政局",
    "财政局",
    "人力资源和社会保障局",
    "自然资源和规划局",
    "生态环境局",
    "住房和城乡建设局",
    "交通运输局",
    "水务局",
    "农业农村局",
    "商务局",
    "文化和旅游局",
    "应急管理局",
    "审计局",
    "市场监督管理局",
    "体育局",
    "统计局",
    "医疗保障局",
    "城市管理局",
    "科学技术局",
    "工业和信息化局",
    "司法局",
    "公安局",
    "退役军人事务局",
    "园林和林业绿化局",
    "行政审批服务局",
    "大数据局",
    "妇女联合会",
    "残疾人联合会",
];

/// Subordinate institutions a bureau may have.
const INSTITUTIONS: [&str; 16] = [
    "机关服务中心",
    "信息中心",
    "综合行政执法大队",
    "事务服务中心",
    "培训中心",
    "发展研究中心",
    "宣传教育中心",
    "监测站",
    "技术服务站",
    "后勤保障中心",
    "财务核算中心",
    "政务服务中心",
    "数据管理中心",
    "质量检测所",
    "应急保障中心",
    "规划设计院",
];

/// The most top-level (district × bureau) units a city has.
pub const MAX_TOP_LEVEL: usize = DISTRICTS.len() * BUREAUS.len();

/// How many of `units` units are bureaus; the rest are their institutions.
/// A third of a small city's units are institutions, so that even the small
/// test dataset has parent codes.
pub fn top_level_count(units: usize) -> usize {
    let two_thirds = units.saturating_mul(2).div_ceil(3);
    two_thirds.clamp(1, MAX_TOP_LEVEL)
}

/// The name of unit `i` of a city with `top` bureaus, and the index of its
/// parent unit when it is an institution. Distinct indexes give distinct
/// names: a bureau is a (district, bureau) pair, an institution a (parent,
/// ordinal) pair.
pub fn unit_name(i: usize, top: usize) -> (String, Option<usize>) {
    if i < top {
        return (bureau_name(i, true), None);
    }
    let j = i - top;
    let parent = j % top;
    let k = j / top;
    let suffix = INSTITUTIONS[k % INSTITUTIONS.len()];
    let ordinal = k / INSTITUTIONS.len();
    let base = bureau_name(parent, false);
    let name = if ordinal == 0 {
        format!("{base}{suffix}")
    } else {
        format!("{base}第{}{suffix}", chinese_number(ordinal + 1))
    };
    (name, Some(parent))
}

/// Bureau `i`'s name. Districts run fastest so that a small city still spans
/// several districts; the bureau index is rotated per district so that a small
/// city still has several kinds of bureau. Every third bureau keeps its own
/// budget apart from its institutions' and is written `（本级）`.
fn bureau_name(i: usize, with_level: bool) -> String {
    let d = i % DISTRICTS.len();
    let b = (i / DISTRICTS.len() + d * 7) % BUREAUS.len();
    let level = if with_level && b.is_multiple_of(3) {
        "（本级）"
    } else {
        ""
    };
    format!("{}{}{level}", DISTRICTS[d], BUREAUS[b])
}

/// 1..=99 in Chinese numerals (`二`, `十一`, `九十九`); larger numbers in
/// Arabic digits, as offices do.
pub fn chinese_number(n: usize) -> String {
    const DIGITS: [&str; 10] = ["零", "一", "二", "三", "四", "五", "六", "七", "八", "九"];
    match n {
        0..=9 => DIGITS[n].to_owned(),
        10..=19 => format!("十{}", if n == 10 { "" } else { DIGITS[n - 10] }),
        20..=99 => format!(
            "{}十{}",
            DIGITS[n / 10],
            if n.is_multiple_of(10) {
                ""
            } else {
                DIGITS[n % 10]
            }
        ),
        _ => n.to_string(),
    }
}

/// Topics of special funds (专项资金).
pub const SPECIAL_TOPICS: [&str; 12] = [
    "义务教育均衡发展专项资金",
    "乡村振兴衔接专项资金",
    "城市道路维修改造专项资金",
    "水污染防治专项资金",
    "基本公共卫生服务专项资金",
    "老旧小区改造专项资金",
    "就业创业扶持专项资金",
    "科技创新引导专项资金",
    "文化惠民工程专项资金",
    "应急物资储备专项资金",
    "养老服务体系建设专项资金",
    "智慧城市建设专项资金",
];

/// Topics of basic expenditure (基本支出) and routine projects.
pub const BASIC_TOPICS: [&str; 10] = [
    "人员经费",
    "日常公用经费",
    "办公设备购置",
    "信息系统运行维护",
    "物业管理服务",
    "业务培训经费",
    "公务用车运行维护",
    "档案数字化加工",
    "政府购买服务",
    "房屋修缮经费",
];

/// Topics of reserve money not yet assigned (待分配).
pub const RESERVE_TOPICS: [&str; 4] = [
    "待分配专项资金",
    "预备费",
    "年度预留资金",
    "待分配转移支付资金",
];

/// Performance indicators (绩效指标) and their target values.
pub const INDICATORS: [(&str, &str); 12] = [
    ("受益人数", "≥5000人"),
    ("项目完成率", "≥95%"),
    ("资金到位率", "100%"),
    ("服务对象满意度", "≥90%"),
    ("新建改造道路长度", "≥12公里"),
    ("设备完好率", "≥98%"),
    ("培训人次", "≥800人次"),
    ("按时完工率", "100%"),
    ("成本节约率", "≥5%"),
    ("覆盖乡镇数", "≥10个"),
    ("水质达标率", "≥92%"),
    ("系统可用率", "≥99.5%"),
];

/// Problem types the audit office writes. Some carry an ASCII comma or
/// double quote, as real ones do, so the CSV must quote them.
pub const AUDIT_PROBLEMS: [&str; 10] = [
    "违规发放津贴补贴",
    "虚列支出",
    "超预算支出",
    "专项资金闲置",
    "政府采购程序不规范",
    "挤占挪用专项资金",
    "绩效目标未完成",
    "项目管理不规范,资料不全",
    "未执行\"三重一大\"决策制度",
    "往来款项长期挂账",
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::normalize_unit_name;
    use std::collections::HashSet;

    #[test]
    fn ten_thousand_units_have_distinct_normalised_names() {
        let top = top_level_count(10_000);
        let names: HashSet<String> = (0..10_000)
            .map(|i| normalize_unit_name(&unit_name(i, top).0))
            .collect();
        assert_eq!(names.len(), 10_000);
    }

    #[test]
    fn numbers_read_as_chinese() {
        assert_eq!(chinese_number(2), "二");
        assert_eq!(chinese_number(10), "十");
        assert_eq!(chinese_number(11), "十一");
        assert_eq!(chinese_number(40), "四十");
        assert_eq!(chinese_number(99), "九十九");
        assert_eq!(chinese_number(100), "100");
    }

    #[test]
    fn institutions_name_their_parent_bureau() {
        let top = top_level_count(12);
        assert_eq!(top, 8);
        let (name, parent) = unit_name(9, top);
        let parent = parent.unwrap();
        let (parent_name, _) = unit_name(parent, top);
        let base = parent_name.trim_end_matches("（本级）");
        assert!(name.starts_with(base), "{name} under {parent_name}");
    }
}
