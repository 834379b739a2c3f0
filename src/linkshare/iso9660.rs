//! A streaming ISO 9660 (ECMA-119) image writer with Joliet names, for link
//! share packages (R40).
//!
//! The image is laid out from the file paths and sizes before any content is
//! read, then written strictly front to back: system area, volume descriptors
//! (primary, Joliet supplementary, terminator), path tables, directory
//! extents, and finally every file's extent in the order given. Contents are
//! asked for one file at a time, so the image is never held in memory and can
//! be written to any `Write`.
//!
//! Names: the primary tree uses ISO 9660 level 1 identifiers (8.3, upper-case
//! d-characters, made unique with `~N`), read by every ISO 9660 reader; the
//! Joliet tree carries the real names (UCS-2, at most 64 characters, made
//! unique the same way), which is what Windows, Linux, macOS, `isoinfo -J` and
//! 7-Zip show. Files larger than one extent allows (4 GiB − 2 KiB) are
//! recorded as multi-extent files (ECMA-119 level 3).

use std::io::{self, Write};

/// The logical block (sector) size.
pub const SECTOR: u64 = 2048;
/// The largest extent one directory record can describe, sector-aligned.
const MAX_EXTENT: u64 = 0xFFFF_F800;
/// The longest Joliet identifier, in UCS-2 code units.
const JOLIET_MAX: usize = 64;
/// The first sector after the system area.
const FIRST_DESCRIPTOR: u64 = 16;

#[derive(Debug, thiserror::Error)]
pub enum IsoError {
    #[error("path {0:?} is empty or has an empty component")]
    BadPath(String),
    #[error("{0:?} is both a file and a directory")]
    FileAndDirectory(String),
    #[error("path {0:?} is given twice")]
    Duplicate(String),
}

/// One of the two directory trees (primary or Joliet): the identifier of
/// every directory and file as recorded in that tree.
struct Names {
    dirs: Vec<Vec<u8>>,
    files: Vec<Vec<u8>>,
}

struct Dir {
    parent: usize,
    /// Child directories, by index in `Image::dirs`.
    dirs: Vec<usize>,
    /// Files, by index in the caller's list.
    files: Vec<usize>,
}

/// The name tree of an image: built from the files' paths before their sizes
/// are known, so the caller can learn the final paths (e.g. for a manifest
/// that is itself one of the files).
pub struct Image {
    volume_id: String,
    dirs: Vec<Dir>,
    /// (directory, long name) of every file, in the caller's order.
    files: Vec<(usize, String)>,
    primary: Names,
    joliet: Names,
}

impl Image {
    /// Lay out the name tree of `paths` (each a list of components, the last
    /// one the file name). Directories are implied by the paths.
    pub fn new(volume_id: &str, paths: &[Vec<String>]) -> Result<Image, IsoError> {
        let mut dirs = vec![Dir {
            parent: 0,
            dirs: Vec::new(),
            files: Vec::new(),
        }];
        let mut dir_names = vec![String::new()];
        let mut files = Vec::with_capacity(paths.len());
        let mut seen = std::collections::HashMap::<(usize, &str), Entry>::new();
        #[derive(Clone, Copy, PartialEq)]
        enum Entry {
            Dir(usize),
            File,
        }
        for (index, path) in paths.iter().enumerate() {
            let joined = path.join("/");
            let Some((name, parents)) = path.split_last() else {
                return Err(IsoError::BadPath(joined));
            };
            if path.iter().any(|c| c.is_empty()) {
                return Err(IsoError::BadPath(joined));
            }
            let mut dir = 0;
            for component in parents {
                dir = match seen.get(&(dir, component.as_str())) {
                    Some(Entry::Dir(d)) => *d,
                    Some(Entry::File) => return Err(IsoError::FileAndDirectory(joined)),
                    None => {
                        let d = dirs.len();
                        dirs.push(Dir {
                            parent: dir,
                            dirs: Vec::new(),
                            files: Vec::new(),
                        });
                        dir_names.push(component.clone());
                        dirs[dir].dirs.push(d);
                        seen.insert((dir, component.as_str()), Entry::Dir(d));
                        d
                    }
                };
            }
            match seen.get(&(dir, name.as_str())) {
                Some(Entry::File) => return Err(IsoError::Duplicate(joined)),
                Some(Entry::Dir(_)) => return Err(IsoError::FileAndDirectory(joined)),
                None => {}
            }
            seen.insert((dir, name.as_str()), Entry::File);
            dirs[dir].files.push(index);
            files.push((dir, name.clone()));
        }
        let primary = name_tree(&dirs, &dir_names, &files, primary_identifier);
        let joliet = name_tree(&dirs, &dir_names, &files, joliet_identifier);
        Ok(Image {
            volume_id: volume_id.to_string(),
            dirs,
            files,
            primary,
            joliet,
        })
    }

    /// The path of file `index` as the Joliet tree shows it (what users see).
    pub fn path(&self, index: usize) -> String {
        let (mut dir, _) = self.files[index];
        let mut parts = vec![utf16_be_to_string(&self.joliet.files[index])];
        while dir != 0 {
            parts.push(utf16_be_to_string(&self.joliet.dirs[dir]));
            dir = self.dirs[dir].parent;
        }
        parts.reverse();
        parts.join("/")
    }

    /// How many bytes the image of files of these `sizes` takes.
    pub fn image_size(&self, sizes: &[u64]) -> u64 {
        self.layout(sizes).total_sectors * SECTOR
    }

    /// Write the image. `contents(i, out)` must write exactly `sizes[i]`
    /// bytes of file `i`; files are asked for in order. Returns the image
    /// size in bytes.
    pub fn write<W, F>(&self, sizes: &[u64], out: W, mut contents: F) -> io::Result<u64>
    where
        W: Write,
        F: FnMut(usize, &mut dyn Write) -> io::Result<()>,
    {
        assert_eq!(sizes.len(), self.files.len(), "one size per file");
        let layout = self.layout(sizes);
        let mut out = Counting {
            inner: out,
            bytes: 0,
        };
        let now = chrono::Utc::now();

        out.write_all(&vec![0; (FIRST_DESCRIPTOR * SECTOR) as usize])?;
        out.write_all(&self.volume_descriptor(&layout, &layout.primary, false, now))?;
        out.write_all(&self.volume_descriptor(&layout, &layout.joliet, true, now))?;
        let mut terminator = vec![0u8; SECTOR as usize];
        terminator[0] = 255;
        terminator[1..6].copy_from_slice(b"CD001");
        terminator[6] = 1;
        out.write_all(&terminator)?;
        for tree in [&layout.primary, &layout.joliet] {
            let names = if tree.joliet {
                &self.joliet
            } else {
                &self.primary
            };
            for big_endian in [false, true] {
                let table = self.path_table(tree, names, big_endian);
                out.write_all(&table)?;
                pad(&mut out)?;
            }
        }
        for tree in [&layout.primary, &layout.joliet] {
            let names = if tree.joliet {
                &self.joliet
            } else {
                &self.primary
            };
            for &dir in &tree.order {
                debug_assert_eq!(out.bytes, tree.dir_lba[dir] * SECTOR);
                out.write_all(&self.directory_extent(&layout, tree, names, dir, now))?;
            }
        }
        for (index, &size) in sizes.iter().enumerate() {
            debug_assert_eq!(out.bytes, layout.file_lba[index] * SECTOR);
            let before = out.bytes;
            contents(index, &mut out)?;
            let written = out.bytes - before;
            if written != size {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "file {} gave {written} bytes, {size} were laid out",
                        self.path(index)
                    ),
                ));
            }
            pad(&mut out)?;
        }
        debug_assert_eq!(out.bytes, layout.total_sectors * SECTOR);
        out.inner.flush()?;
        Ok(out.bytes)
    }

    fn layout(&self, sizes: &[u64]) -> Layout {
        let mut primary = TreeLayout::new(self, &self.primary, false);
        let mut joliet = TreeLayout::new(self, &self.joliet, true);
        let mut lba = FIRST_DESCRIPTOR + 3;
        for tree in [&mut primary, &mut joliet] {
            tree.path_table_size = tree
                .order
                .iter()
                .map(|&d| path_record_len(&tree.identifier(self, d)))
                .sum();
            tree.l_table = lba;
            lba += sectors(tree.path_table_size);
            tree.m_table = lba;
            lba += sectors(tree.path_table_size);
        }
        for tree in [&mut primary, &mut joliet] {
            let names = if tree.joliet {
                &self.joliet
            } else {
                &self.primary
            };
            for &dir in &tree.order.clone() {
                let mut lengths = vec![34, 34];
                lengths.extend(tree.children[dir].iter().flat_map(|child| {
                    let (identifier, count) = match *child {
                        Child::Dir(d) => (&names.dirs[d], 1),
                        Child::File(f) => (&names.files[f], extent_count(sizes[f])),
                    };
                    std::iter::repeat_n(record_len(identifier.len()), count)
                }));
                tree.dir_size[dir] = directory_size(&lengths);
                tree.dir_lba[dir] = lba;
                lba += tree.dir_size[dir] / SECTOR;
            }
        }
        let mut file_lba = Vec::with_capacity(sizes.len());
        for &size in sizes {
            file_lba.push(lba);
            lba += sectors(size);
        }
        Layout {
            primary,
            joliet,
            file_lba,
            sizes: sizes.to_vec(),
            total_sectors: lba,
        }
    }

    fn volume_descriptor(
        &self,
        layout: &Layout,
        tree: &TreeLayout,
        joliet: bool,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Vec<u8> {
        let mut d = vec![0u8; SECTOR as usize];
        d[0] = if joliet { 2 } else { 1 };
        d[1..6].copy_from_slice(b"CD001");
        d[6] = 1;
        let text = |d: &mut [u8], at: usize, len: usize, value: &str| {
            if joliet {
                let units = value.encode_utf16().chain(std::iter::repeat(0x20));
                for (i, unit) in units.take(len / 2).enumerate() {
                    d[at + 2 * i..at + 2 * i + 2].copy_from_slice(&unit.to_be_bytes());
                }
            } else {
                let bytes = value.bytes().chain(std::iter::repeat(b' '));
                for (i, byte) in bytes.take(len).enumerate() {
                    d[at + i] = byte;
                }
            }
        };
        text(&mut d, 8, 32, "");
        let volume_id = if joliet {
            self.volume_id.clone()
        } else {
            d_characters(&self.volume_id)
        };
        text(&mut d, 40, 32, &volume_id);
        both32(&mut d[80..88], layout.total_sectors as u32);
        if joliet {
            d[88..91].copy_from_slice(b"%/E"); // UCS-2 level 3
        }
        both16(&mut d[120..124], 1);
        both16(&mut d[124..128], 1);
        both16(&mut d[128..132], SECTOR as u16);
        both32(&mut d[132..140], tree.path_table_size as u32);
        d[140..144].copy_from_slice(&(tree.l_table as u32).to_le_bytes());
        d[148..152].copy_from_slice(&(tree.m_table as u32).to_be_bytes());
        let root = directory_record(&[0], tree.dir_lba[0], tree.dir_size[0], true, false, now);
        d[156..190].copy_from_slice(&root);
        text(&mut d, 190, 128, "");
        text(&mut d, 318, 128, "");
        text(&mut d, 446, 128, "");
        text(&mut d, 574, 128, "CASESHARE");
        text(&mut d, 702, 37, "");
        text(&mut d, 739, 37, "");
        text(&mut d, 776, 37, "");
        let stamp = now.format("%Y%m%d%H%M%S00").to_string();
        d[813..829].copy_from_slice(stamp.as_bytes());
        d[830..846].copy_from_slice(stamp.as_bytes());
        d[847..863].copy_from_slice(b"0000000000000000");
        d[864..880].copy_from_slice(stamp.as_bytes());
        d[881] = 1;
        d
    }

    fn path_table(&self, tree: &TreeLayout, names: &Names, big_endian: bool) -> Vec<u8> {
        let mut number = vec![0u16; self.dirs.len()];
        for (i, &dir) in tree.order.iter().enumerate() {
            number[dir] = i as u16 + 1;
        }
        let mut table = Vec::with_capacity(tree.path_table_size as usize);
        for &dir in &tree.order {
            let identifier = if dir == 0 {
                vec![0]
            } else {
                names.dirs[dir].clone()
            };
            let parent = number[self.dirs[dir].parent];
            table.push(identifier.len() as u8);
            table.push(0);
            let lba = tree.dir_lba[dir] as u32;
            if big_endian {
                table.extend_from_slice(&lba.to_be_bytes());
                table.extend_from_slice(&parent.to_be_bytes());
            } else {
                table.extend_from_slice(&lba.to_le_bytes());
                table.extend_from_slice(&parent.to_le_bytes());
            }
            table.extend_from_slice(&identifier);
            if identifier.len() % 2 == 1 {
                table.push(0);
            }
        }
        table
    }

    fn directory_extent(
        &self,
        layout: &Layout,
        tree: &TreeLayout,
        names: &Names,
        dir: usize,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Vec<u8> {
        let parent = self.dirs[dir].parent;
        let mut records = vec![
            directory_record(
                &[0],
                tree.dir_lba[dir],
                tree.dir_size[dir],
                true,
                false,
                now,
            ),
            directory_record(
                &[1],
                tree.dir_lba[parent],
                tree.dir_size[parent],
                true,
                false,
                now,
            ),
        ];
        for child in &tree.children[dir] {
            match *child {
                Child::Dir(d) => records.push(directory_record(
                    &names.dirs[d],
                    tree.dir_lba[d],
                    tree.dir_size[d],
                    true,
                    false,
                    now,
                )),
                Child::File(f) => {
                    let size = layout.sizes[f];
                    let count = extent_count(size);
                    for part in 0..count {
                        let offset = part as u64 * MAX_EXTENT;
                        let length = (size - offset).min(MAX_EXTENT);
                        records.push(directory_record(
                            &names.files[f],
                            layout.file_lba[f] + offset / SECTOR,
                            length,
                            false,
                            part + 1 < count,
                            now,
                        ));
                    }
                }
            }
        }
        let mut extent = Vec::with_capacity(tree.dir_size[dir] as usize);
        for record in records {
            let used = extent.len() as u64 % SECTOR;
            if used + record.len() as u64 > SECTOR {
                extent.resize(extent.len() + (SECTOR - used) as usize, 0);
            }
            extent.extend_from_slice(&record);
        }
        extent.resize(tree.dir_size[dir] as usize, 0);
        extent
    }
}

#[derive(Clone, Copy)]
enum Child {
    Dir(usize),
    File(usize),
}

struct TreeLayout {
    joliet: bool,
    /// Directories in path-table order (breadth first, by identifier).
    order: Vec<usize>,
    /// Each directory's children sorted by identifier.
    children: Vec<Vec<Child>>,
    dir_lba: Vec<u64>,
    dir_size: Vec<u64>,
    path_table_size: u64,
    l_table: u64,
    m_table: u64,
}

impl TreeLayout {
    fn new(image: &Image, names: &Names, joliet: bool) -> TreeLayout {
        let children: Vec<Vec<Child>> = image
            .dirs
            .iter()
            .map(|dir| {
                let mut children: Vec<Child> = dir
                    .dirs
                    .iter()
                    .map(|&d| Child::Dir(d))
                    .chain(dir.files.iter().map(|&f| Child::File(f)))
                    .collect();
                children.sort_by(|a, b| {
                    let key = |c: &Child| match *c {
                        Child::Dir(d) => names.dirs[d].clone(),
                        Child::File(f) => names.files[f].clone(),
                    };
                    key(a).cmp(&key(b))
                });
                children
            })
            .collect();
        let mut order = vec![0];
        let mut next = 0;
        while next < order.len() {
            let dir = order[next];
            order.extend(children[dir].iter().filter_map(|c| match *c {
                Child::Dir(d) => Some(d),
                Child::File(_) => None,
            }));
            next += 1;
        }
        let n = image.dirs.len();
        TreeLayout {
            joliet,
            order,
            children,
            dir_lba: vec![0; n],
            dir_size: vec![0; n],
            path_table_size: 0,
            l_table: 0,
            m_table: 0,
        }
    }

    fn identifier(&self, image: &Image, dir: usize) -> Vec<u8> {
        if dir == 0 {
            vec![0]
        } else if self.joliet {
            image.joliet.dirs[dir].clone()
        } else {
            image.primary.dirs[dir].clone()
        }
    }
}

struct Layout {
    primary: TreeLayout,
    joliet: TreeLayout,
    file_lba: Vec<u64>,
    sizes: Vec<u64>,
    total_sectors: u64,
}

/// Give every directory and file an identifier unique within its directory.
/// `identifier(name, is_dir, n)` makes the identifier of `name`, with the
/// disambiguating suffix `~n` when `n > 0`.
fn name_tree(
    dirs: &[Dir],
    dir_names: &[String],
    files: &[(usize, String)],
    identifier: fn(&str, bool, usize) -> Vec<u8>,
) -> Names {
    let mut names = Names {
        dirs: vec![Vec::new(); dirs.len()],
        files: vec![Vec::new(); files.len()],
    };
    for dir in dirs {
        let mut taken = std::collections::HashSet::new();
        let mut unique = |name: &str, is_dir: bool| {
            let mut n = 0;
            loop {
                let id = identifier(name, is_dir, n);
                // The primary tree compares without the version suffix.
                let key = id.strip_suffix(b";1").unwrap_or(&id).to_vec();
                if taken.insert(key) {
                    return id;
                }
                n += 1;
            }
        };
        for &d in &dir.dirs {
            names.dirs[d] = unique(&dir_names[d], true);
        }
        for &f in &dir.files {
            names.files[f] = unique(&files[f].1, false);
        }
    }
    names
}

/// Upper-case d-characters (A–Z, 0–9, `_`), everything else as `_`.
fn d_characters(s: &str) -> String {
    s.chars()
        .map(|c| match c.to_ascii_uppercase() {
            c @ ('A'..='Z' | '0'..='9') => c,
            _ => '_',
        })
        .collect()
}

fn with_suffix(base: &str, max: usize, n: usize) -> String {
    if n == 0 {
        return base.chars().take(max).collect();
    }
    let suffix = format!("~{n}");
    let keep = max.saturating_sub(suffix.len());
    base.chars().take(keep).collect::<String>() + &suffix
}

/// A level 1 identifier: `NAME` for a directory, `NAME.EXT;1` for a file.
fn primary_identifier(name: &str, is_dir: bool, n: usize) -> Vec<u8> {
    if is_dir {
        let base = d_characters(name);
        return with_suffix(&base, 8, n).into_bytes();
    }
    let (stem, ext) = match name.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() && !ext.is_empty() => (stem, ext),
        _ => (name, ""),
    };
    let ext: String = d_characters(ext).chars().take(3).collect();
    format!("{}.{ext};1", with_suffix(&d_characters(stem), 8, n)).into_bytes()
}

/// A Joliet identifier: the name in UCS-2 big-endian, at most 64 units;
/// characters Joliet forbids (and those outside UCS-2) become `_`.
fn joliet_identifier(name: &str, _is_dir: bool, n: usize) -> Vec<u8> {
    let cleaned: String = name
        .chars()
        .map(|c| {
            if c < ' ' || "*/:;?\\".contains(c) || c.len_utf16() > 1 {
                '_'
            } else {
                c
            }
        })
        .collect();
    let (stem, ext) = match cleaned.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() && ext.chars().count() <= 8 => {
            (stem.to_string(), format!(".{ext}"))
        }
        _ => (cleaned.clone(), String::new()),
    };
    let max = JOLIET_MAX - ext.chars().count();
    let name = with_suffix(&stem, max, n) + &ext;
    name.encode_utf16().flat_map(u16::to_be_bytes).collect()
}

fn utf16_be_to_string(bytes: &[u8]) -> String {
    let units: Vec<u16> = bytes
        .chunks_exact(2)
        .map(|c| u16::from_be_bytes([c[0], c[1]]))
        .collect();
    String::from_utf16_lossy(&units)
}

fn sectors(bytes: u64) -> u64 {
    bytes.div_ceil(SECTOR)
}

fn extent_count(size: u64) -> usize {
    size.div_ceil(MAX_EXTENT).max(1) as usize
}

fn record_len(identifier_len: usize) -> usize {
    33 + identifier_len + (identifier_len + 1) % 2
}

fn path_record_len(identifier: &[u8]) -> u64 {
    (8 + identifier.len() + identifier.len() % 2) as u64
}

/// The size of a directory extent holding records of these lengths: a record
/// never crosses a sector boundary.
fn directory_size(lengths: &[usize]) -> u64 {
    let mut size = 0u64;
    for &len in lengths {
        let used = size % SECTOR;
        if used + len as u64 > SECTOR {
            size += SECTOR - used;
        }
        size += len as u64;
    }
    sectors(size).max(1) * SECTOR
}

fn directory_record(
    identifier: &[u8],
    lba: u64,
    length: u64,
    is_dir: bool,
    more_extents: bool,
    now: chrono::DateTime<chrono::Utc>,
) -> Vec<u8> {
    use chrono::{Datelike, Timelike};
    let len = record_len(identifier.len());
    let mut r = vec![0u8; len];
    r[0] = len as u8;
    both32(&mut r[2..10], lba as u32);
    both32(&mut r[10..18], length as u32);
    r[18] = (now.year() - 1900).clamp(0, 255) as u8;
    r[19] = now.month() as u8;
    r[20] = now.day() as u8;
    r[21] = now.hour() as u8;
    r[22] = now.minute() as u8;
    r[23] = now.second() as u8;
    r[24] = 0; // UTC
    r[25] = (if is_dir { 0x02 } else { 0 }) | (if more_extents { 0x80 } else { 0 });
    both16(&mut r[28..32], 1);
    r[32] = identifier.len() as u8;
    r[33..33 + identifier.len()].copy_from_slice(identifier);
    r
}

fn both16(out: &mut [u8], v: u16) {
    out[..2].copy_from_slice(&v.to_le_bytes());
    out[2..4].copy_from_slice(&v.to_be_bytes());
}

fn both32(out: &mut [u8], v: u32) {
    out[..4].copy_from_slice(&v.to_le_bytes());
    out[4..8].copy_from_slice(&v.to_be_bytes());
}

struct Counting<W> {
    inner: W,
    bytes: u64,
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Zero-fill to the next sector boundary.
fn pad<W: Write>(out: &mut Counting<W>) -> io::Result<()> {
    let used = out.bytes % SECTOR;
    if used != 0 {
        out.write_all(&vec![0; (SECTOR - used) as usize])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(list: &[&str]) -> Vec<Vec<String>> {
        list.iter()
            .map(|p| p.split('/').map(String::from).collect())
            .collect()
    }

    #[test]
    fn primary_identifiers_are_level_1_and_unique() {
        let image = Image::new(
            "t",
            &paths(&[
                "evidence/Scene photo-1",
                "evidence/Scene photo-2",
                "manifest.json",
                "evidence/sub folder/x",
            ]),
        )
        .unwrap();
        let ids: Vec<String> = image
            .primary
            .files
            .iter()
            .map(|b| String::from_utf8(b.clone()).unwrap())
            .collect();
        assert_eq!(
            ids,
            ["SCENE_PH.;1", "SCENE_~1.;1", "MANIFEST.JSO;1", "X.;1"]
        );
        assert_eq!(image.primary.dirs[2], b"SUB_FOLD");
        assert_eq!(image.path(1), "evidence/Scene photo-2");
    }

    #[test]
    fn joliet_names_are_capped_at_64_and_stay_unique() {
        let long = "a".repeat(80);
        let image = Image::new("t", &paths(&[&format!("{long}.txt"), &long])).unwrap();
        assert!(image.path(0).ends_with(".txt"));
        let first = image.path(0);
        let second = image.path(1);
        assert_eq!(first.chars().count(), 64);
        assert_eq!(second.chars().count(), 64);
        assert_ne!(first, second);
    }

    #[test]
    fn bad_trees_are_refused() {
        assert!(matches!(
            Image::new("t", &paths(&["a/b", "a"])),
            Err(IsoError::FileAndDirectory(_))
        ));
        assert!(matches!(
            Image::new("t", &paths(&["a", "a/b"])),
            Err(IsoError::FileAndDirectory(_))
        ));
        assert!(matches!(
            Image::new("t", &paths(&["a", "a"])),
            Err(IsoError::Duplicate(_))
        ));
        assert!(matches!(
            Image::new("t", &paths(&["a//b"])),
            Err(IsoError::BadPath(_))
        ));
    }

    #[test]
    fn directory_records_never_cross_a_sector() {
        // 60 records of 60 bytes: 34 fit in the first sector (2040 bytes).
        assert_eq!(directory_size(&[60; 34]), SECTOR);
        assert_eq!(directory_size(&[60; 35]), 2 * SECTOR);
        assert_eq!(directory_size(&[]), SECTOR);
    }

    #[test]
    fn files_over_4_gib_are_recorded_as_multi_extent() {
        let size = 5 * 1024 * 1024 * 1024u64;
        let image = Image::new("t", &paths(&["big.mp4"])).unwrap();
        let layout = image.layout(&[size]);
        let now = chrono::Utc::now();
        for (tree, names) in [
            (&layout.primary, &image.primary),
            (&layout.joliet, &image.joliet),
        ] {
            let extent = image.directory_extent(&layout, tree, names, 0, now);
            let mut records = Vec::new();
            let mut at = 0;
            while at < extent.len() && extent[at] != 0 {
                records.push(&extent[at..at + extent[at] as usize]);
                at += extent[at] as usize;
            }
            assert_eq!(records.len(), 4, ". and .. and two extents");
            let field =
                |r: &[u8], at: usize| u32::from_le_bytes(r[at..at + 4].try_into().unwrap()) as u64;
            let (first, second) = (records[2], records[3]);
            assert_eq!(first[25], 0x80, "more extents follow");
            assert_eq!(second[25], 0, "the last extent");
            assert_eq!(field(first, 10), MAX_EXTENT);
            assert_eq!(field(second, 10), size - MAX_EXTENT);
            assert_eq!(field(first, 2), layout.file_lba[0]);
            assert_eq!(field(second, 2), layout.file_lba[0] + MAX_EXTENT / SECTOR);
            assert_eq!(&first[33..], &second[33..], "one file, one identifier");
        }
        assert_eq!(
            image.image_size(&[size]),
            (layout.file_lba[0] + size.div_ceil(SECTOR)) * SECTOR
        );
    }

    #[test]
    fn the_layout_matches_what_is_written() {
        let image = Image::new("t", &paths(&["a/b/c", "a/d", "e"])).unwrap();
        let sizes = [5000, 0, 2048];
        let mut out = Vec::new();
        let written = image
            .write(&sizes, &mut out, |i, w| {
                w.write_all(&vec![b'x'; sizes[i] as usize])
            })
            .unwrap();
        assert_eq!(written, out.len() as u64);
        assert_eq!(written, image.image_size(&sizes));
        assert_eq!(&out[16 * 2048 + 1..16 * 2048 + 6], b"CD001");
        if let Ok(path) = std::env::var("ISO9660_TEST_OUT") {
            std::fs::write(path, &out).unwrap();
        }
        // A file that gives fewer bytes than laid out is an error.
        let err = image
            .write(&sizes, &mut Vec::new(), |_, w| w.write_all(b"x"))
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }
}
