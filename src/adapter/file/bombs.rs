use std::io::Read;

pub(super) const MIB: u64 = 1 << 20;

/// A workbook whose shared strings are one string of `run` letters,
/// inflating to `run` and more bytes from a few MiB. The zip headers
/// declare the part's true size, or `declared_part` when given. Returns
/// the bytes, what all parts declare, and what the strings declare.
pub(super) fn bomb_workbook(run: u64, declared_part: Option<u64>) -> (Vec<u8>, u64, u64) {
    use super::props::{XCell, workbook};
    let grid = [
        ((0, 0), XCell::Text("单位编码".into())),
        ((1, 0), XCell::Number(370101.0)),
    ];
    let valid = workbook(&grid.into_iter().collect(), "部门考评");
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(valid)).unwrap();
    let prefix = "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n<sst \
                  xmlns=\"http://schemas.openxmlformats.org/spreadsheetml/2006/main\" \
                  count=\"1\" uniqueCount=\"1\"><si><t>";
    let suffix = "</t></si></sst>";
    let mut parts = Vec::new();
    for i in 0..archive.len() {
        let mut f = archive.by_index(i).unwrap();
        let name = f.name().unwrap().into_owned();
        if name == "xl/sharedStrings.xml" {
            let size = prefix.len() as u64 + run + suffix.len() as u64;
            parts.push(Part {
                name,
                deflated: true,
                data: deflate_run(prefix.as_bytes(), b'a', run, suffix.as_bytes()),
                // Never read to its end: any checksum will do.
                crc: 0,
                size: declared_part.unwrap_or(size),
            });
        } else {
            let mut data = Vec::new();
            f.read_to_end(&mut data).unwrap();
            parts.push(Part {
                name,
                deflated: false,
                crc: crc32(&data),
                size: data.len() as u64,
                data,
            });
        }
    }
    let declared = parts.iter().map(|p| p.size).sum();
    let strings = parts
        .iter()
        .find(|p| p.name.contains("sharedStrings"))
        .unwrap()
        .size;
    (zip_of(&parts), declared, strings)
}

/// The workbook with its shared strings stored twice under one name.
pub(super) fn same_named(workbook: Vec<u8>) -> Vec<u8> {
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(workbook)).unwrap();
    let mut parts = Vec::new();
    for i in 0..archive.len() {
        let mut f = archive.by_index(i).unwrap();
        let mut data = Vec::new();
        f.read_to_end(&mut data).unwrap();
        let name = f.name().unwrap().into_owned();
        let copies = if name == "xl/sharedStrings.xml" { 2 } else { 1 };
        for _ in 0..copies {
            parts.push(Part {
                name: name.clone(),
                deflated: false,
                crc: crc32(&data),
                size: data.len() as u64,
                data: data.clone(),
            });
        }
    }
    zip_of(&parts)
}

/// The test's own process's peak resident memory, bytes.
pub(super) fn peak_rss() -> i64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    let kib: i64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib * 1024
}

struct Part {
    name: String,
    deflated: bool,
    data: Vec<u8>,
    crc: u32,
    size: u64,
}

/// A zip archive of `parts`, zip64 where a size needs it.
fn zip_of(parts: &[Part]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    for p in parts {
        let offset = out.len() as u32;
        let name = p.name.as_bytes();
        let zip64 = p.size >= u64::from(u32::MAX);
        // The zip64 sizes: uncompressed, then compressed.
        let mut extra = Vec::new();
        if zip64 {
            extra.extend(1u16.to_le_bytes());
            extra.extend(16u16.to_le_bytes());
            extra.extend(p.size.to_le_bytes());
            extra.extend((p.data.len() as u64).to_le_bytes());
        }
        let (size, compressed) = if zip64 {
            (u32::MAX, u32::MAX)
        } else {
            (p.size as u32, p.data.len() as u32)
        };
        let version: u16 = if zip64 { 45 } else { 20 };
        let method: u16 = if p.deflated { 8 } else { 0 };
        let common = |v: &mut Vec<u8>| {
            v.extend(version.to_le_bytes());
            v.extend(0u16.to_le_bytes()); // flags
            v.extend(method.to_le_bytes());
            v.extend(0u16.to_le_bytes()); // time
            v.extend(0x21u16.to_le_bytes()); // 1980-01-01
            v.extend(p.crc.to_le_bytes());
            v.extend(compressed.to_le_bytes());
            v.extend(size.to_le_bytes());
            v.extend((name.len() as u16).to_le_bytes());
            v.extend((extra.len() as u16).to_le_bytes());
        };
        out.extend(0x0403_4b50u32.to_le_bytes());
        common(&mut out);
        out.extend(name);
        out.extend(&extra);
        out.extend(&p.data);
        central.extend(0x0201_4b50u32.to_le_bytes());
        central.extend(version.to_le_bytes()); // made by
        common(&mut central);
        central.extend(0u16.to_le_bytes()); // comment
        central.extend(0u16.to_le_bytes()); // disk
        central.extend(0u16.to_le_bytes()); // internal attributes
        central.extend(0u32.to_le_bytes()); // external attributes
        central.extend(offset.to_le_bytes());
        central.extend(name);
        central.extend(&extra);
    }
    let at = out.len() as u32;
    out.extend(&central);
    out.extend(0x0605_4b50u32.to_le_bytes());
    out.extend([0u8; 4]); // disks
    out.extend((parts.len() as u16).to_le_bytes());
    out.extend((parts.len() as u16).to_le_bytes());
    out.extend((central.len() as u32).to_le_bytes());
    out.extend(at.to_le_bytes());
    out.extend(0u16.to_le_bytes());
    out
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// Bits in deflate's order: values from their least significant bit.
#[derive(Default)]
struct Bits {
    out: Vec<u8>,
    acc: u64,
    n: u32,
}

impl Bits {
    fn put(&mut self, value: u64, len: u32) {
        self.acc |= value << self.n;
        self.n += len;
        while self.n >= 8 {
            self.out.push(self.acc as u8);
            self.acc >>= 8;
            self.n -= 8;
        }
    }

    /// A Huffman code, which deflate packs from its most significant bit.
    fn code(&mut self, code: u32, len: u32) {
        self.put(u64::from(code.reverse_bits() >> (32 - len)), len);
    }

    /// A literal byte in the fixed code.
    fn literal(&mut self, b: u8) {
        match b {
            0..=143 => self.code(0x30 + u32::from(b), 8),
            _ => self.code(0x190 + u32::from(b) - 144, 9),
        }
    }
}

/// Raw deflate of `prefix`, `run` times `byte`, `suffix`: one block of
/// the fixed code whose run is copies of 258 bytes at distance 1, 13
/// bits each (deflate's best ratio, about 1:1000).
fn deflate_run(prefix: &[u8], byte: u8, run: u64, suffix: &[u8]) -> Vec<u8> {
    assert!(run > 0);
    let mut bits = Bits::default();
    bits.put(1, 1); // the last block
    bits.put(1, 2); // of the fixed code
    prefix.iter().for_each(|&b| bits.literal(b));
    bits.literal(byte);
    // Length 258 is symbol 285 (8 bits, no extra); distance 1 is code 0
    // (5 bits).
    let copy = u64::from(0xC5u32.reverse_bits() >> 24);
    for _ in 0..(run - 1) / 258 {
        bits.put(copy, 13);
    }
    for _ in 0..(run - 1) % 258 {
        bits.literal(byte);
    }
    suffix.iter().for_each(|&b| bits.literal(b));
    bits.code(0, 7); // end of block
    if bits.n > 0 {
        bits.out.push(bits.acc as u8);
    }
    bits.out
}

#[test]
fn a_hand_made_bomb_inflates_to_what_it_says() {
    // The bombs above are only as good as their deflate: a small one,
    // with honest headers and checksum, read back by the zip crate.
    let (prefix, suffix) = (b"<a>\xe5\x90\x8d".as_slice(), b"</a>".as_slice());
    let run = 258 * 3 + 100;
    let mut expected = prefix.to_vec();
    expected.extend(std::iter::repeat_n(b'a', run as usize));
    expected.extend(suffix);
    let bytes = zip_of(&[Part {
        name: "x.xml".into(),
        deflated: true,
        data: deflate_run(prefix, b'a', run, suffix),
        crc: crc32(&expected),
        size: expected.len() as u64,
    }]);
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
    let mut inflated = Vec::new();
    archive
        .by_index(0)
        .unwrap()
        .read_to_end(&mut inflated)
        .unwrap();
    assert_eq!(inflated, expected);
}
