//! Workbooks are zip archives: before one is parsed, what it would inflate
//! to is checked against `max_inflated_bytes`, first as its parts declare
//! it and then, since declarations can lie, by inflating every part into a
//! sink that stops one byte past the limit. Nothing here holds a part.

use std::collections::HashSet;
use std::fmt;
use std::io::{BufReader, Read, Seek};

/// Why a workbook is refused before it is parsed.
#[derive(Debug, thiserror::Error)]
pub(super) enum Inflation {
    #[error(
        "its parts declare {declared} bytes uncompressed ({part}: {part_bytes}), over the \
         limit of {limit} (max_inflated_bytes); the file is refused whole"
    )]
    Declared {
        declared: u64,
        part: String,
        part_bytes: u64,
        limit: u64,
    },
    #[error(
        "{part} inflates past the limit of {limit} (max_inflated_bytes) though the parts \
         declare {declared} bytes in all; the file is refused whole"
    )]
    Inflated {
        part: String,
        limit: u64,
        declared: u64,
    },
    #[error(
        "{part} claims {claimed} shared strings, more than its {bytes} bytes can hold; \
         the file is refused whole"
    )]
    SharedStrings {
        part: String,
        claimed: u128,
        bytes: u64,
    },
    #[error("two parts are named {0:?} (letter case and slashes aside); the file is refused whole")]
    SameName(String),
    #[error("two parts have one name; the file is refused whole")]
    RepeatedName,
    #[error("{part} cannot be inflated ({reason}); the file is refused whole")]
    Unreadable { part: String, reason: String },
}

/// The shortest shared string there is: `<si/>`.
pub(super) const SHORTEST_SHARED_STRING: u128 = 5;

/// Checks that a workbook can be parsed in bounded memory: what its parts
/// declare, then what they really inflate to (each one streamed through a
/// counting sink that stops at the limit), and that the shared strings do
/// not claim more strings than their bytes can hold, which calamine 0.38
/// reserves room for up front (a 6 KB workbook claiming 4294967295 aborted
/// the process). Part names are compared as calamine looks them up, so that
/// the part checked is the part parsed.
pub(super) fn check_inflation<R: Read + Seek>(reader: R, limit: u64) -> Result<(), Inflation> {
    // What the zip crate cannot open calamine cannot open either (it reads
    // through the same crate), and it says better why: a password, say.
    let Ok(mut archive) = zip::ZipArchive::new(reader) else {
        return Ok(());
    };
    if archive.has_duplicate_names() {
        return Err(Inflation::RepeatedName);
    }
    let mut names = Vec::with_capacity(archive.len());
    let mut lookups = HashSet::new();
    let mut declared = 0u64;
    let mut biggest = (String::new(), 0u64);
    for i in 0..archive.len() {
        let entry = archive
            .by_index_data(i)
            .map_err(|e| Inflation::Unreadable {
                part: format!("part {i}"),
                reason: e.to_string(),
            })?;
        let name = entry
            .name()
            .map(std::borrow::Cow::into_owned)
            .unwrap_or_else(|_| String::from_utf8_lossy(entry.name_raw()).into_owned());
        let lookup = name.replace('\\', "/").to_ascii_lowercase();
        if !lookups.insert(lookup.clone()) {
            return Err(Inflation::SameName(name));
        }
        declared = declared.saturating_add(entry.size());
        if entry.size() > biggest.1 {
            biggest = (name.clone(), entry.size());
        }
        names.push((name, lookup));
    }
    if declared > limit {
        return Err(Inflation::Declared {
            declared,
            part: biggest.0,
            part_bytes: biggest.1,
            limit,
        });
    }
    let mut left = limit;
    for (i, (name, lookup)) in names.into_iter().enumerate() {
        let unreadable = |e: &dyn fmt::Display| Inflation::Unreadable {
            part: name.clone(),
            reason: e.to_string(),
        };
        let mut part = archive.by_index(i).map_err(|e| unreadable(&e))?;
        let (inflated, claimed) = if lookup.ends_with("sharedstrings.xml") {
            let mut claimed = None;
            let inflated = inflate_within(&mut part, left, |head| {
                claimed = claimed_strings(head);
            });
            (inflated, claimed)
        } else {
            (inflate_within(&mut part, left, |_| {}), None)
        };
        let Some(inflated) = inflated.map_err(|e| unreadable(&e))? else {
            return Err(Inflation::Inflated {
                part: name,
                limit,
                declared,
            });
        };
        left -= inflated;
        if let Some(claimed) = claimed
            && claimed.saturating_mul(SHORTEST_SHARED_STRING) > u128::from(inflated)
        {
            return Err(Inflation::SharedStrings {
                part: name,
                claimed,
                bytes: inflated,
            });
        }
    }
    Ok(())
}

/// Reads `part` to its end into nothing, or stops once it gives more than
/// `limit` bytes: `Some(bytes)`, or `None` past the limit. `look` sees the
/// bytes first, through the same count, and may leave any of them unread.
pub(super) fn inflate_within(
    part: &mut dyn Read,
    limit: u64,
    look: impl FnOnce(&mut dyn Read),
) -> std::io::Result<Option<u64>> {
    let budget = limit.saturating_add(1);
    let mut counted = part.take(budget);
    look(&mut counted);
    std::io::copy(&mut counted, &mut std::io::sink())?;
    let inflated = budget - counted.limit();
    Ok((inflated <= limit).then_some(inflated))
}

/// The number of strings a shared strings part claims, read from the same
/// element calamine reads it from (the first `sst`, by the same parser and
/// settings), as the largest number any `uniqueCount` there could be taken
/// to say: a count this reading misses must not be one calamine finds.
pub(super) fn claimed_strings(part: &mut dyn Read) -> Option<u128> {
    let mut xml = quick_xml::Reader::from_reader(BufReader::new(part));
    let config = xml.config_mut();
    config.check_end_names = false;
    config.trim_text(false);
    config.check_comments = false;
    config.expand_empty_elements = true;
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match xml.read_event_into(&mut buf) {
            Ok(quick_xml::events::Event::Start(e)) if e.local_name().as_ref() == "sst" => {
                return Some(largest_count(e.attributes_raw().as_bytes()));
            }
            // calamine stops at the same place, with an error: it reserves
            // nothing.
            Ok(quick_xml::events::Event::Eof) | Err(_) => return None,
            Ok(_) => {}
        }
    }
}

/// The largest run of digits in any `uniqueCount="…"` of raw attributes.
pub(super) fn largest_count(attributes: &[u8]) -> u128 {
    const KEY: &[u8] = b"uniqueCount";
    let mut most = 0;
    let mut rest = attributes;
    while let Some(at) = rest.windows(KEY.len()).position(|w| w == KEY) {
        rest = &rest[at + KEY.len()..];
        let Some(value) = rest.trim_ascii_start().strip_prefix(b"=") else {
            continue;
        };
        let value = value.trim_ascii_start();
        let Some((&quote, value)) = value.split_first() else {
            continue;
        };
        if quote != b'"' && quote != b'\'' {
            continue;
        }
        let value = value.split(|&b| b == quote).next().unwrap_or_default();
        for digits in value.split(|b| !b.is_ascii_digit()) {
            let n = digits.iter().fold(0u128, |n, d| {
                n.saturating_mul(10).saturating_add(u128::from(d - b'0'))
            });
            most = most.max(n);
        }
    }
    most
}
