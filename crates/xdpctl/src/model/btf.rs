//! A small reader of BTF, the kernel's type format: just enough to know what
//! a map's key and value are, so xdpctl can print and parse them by type.
//!
//! NB: aya-obj parses BTF too, but keeps type lookup private to the crate.

/// One BTF type, reduced to what formatting needs.
#[derive(Clone, Debug, PartialEq)]
pub enum Type {
    /// `void` (id 0) and kinds formatting does not use.
    Void,
    /// An integer.
    Int {
        /// Its name (`char`, `unsigned int`, ...).
        name: String,
        /// Bytes.
        size: u32,
        /// Signed.
        signed: bool,
        /// `_Bool`.
        bool: bool,
        /// `char`.
        char: bool,
    },
    /// A pointer (printed as a number).
    Ptr,
    /// An array.
    Array {
        /// Element type id.
        elem: u32,
        /// Number of elements.
        len: u32,
    },
    /// A struct or union.
    Struct {
        /// Its name (may be empty).
        name: String,
        /// Bytes.
        size: u32,
        /// Members.
        members: Vec<Member>,
        /// Whether it is a union.
        union: bool,
    },
    /// An enum (32 or 64 bit).
    Enum {
        /// Its name.
        name: String,
        /// Bytes.
        size: u32,
        /// Signed values.
        signed: bool,
        /// Variants.
        values: Vec<(String, i64)>,
    },
    /// A typedef.
    Typedef {
        /// Its name (`__be32`, ...).
        name: String,
        /// The type it names.
        ty: u32,
    },
    /// `const`, `volatile`, `restrict`, type tags: transparent.
    Modifier {
        /// The modified type.
        ty: u32,
    },
    /// A float.
    Float {
        /// Bytes.
        size: u32,
    },
    /// A global variable (what a DATASEC lists).
    Var {
        /// Its name in the C source.
        name: String,
        /// Its type.
        ty: u32,
    },
    /// A data section (`.rodata`, `.data`, `.bss`): the variables in it and
    /// where. A global-data map's value type.
    Datasec {
        /// The section's name.
        name: String,
        /// Bytes.
        size: u32,
        /// The variables, by offset.
        vars: Vec<SecVar>,
    },
}

/// One variable of a DATASEC.
#[derive(Clone, Debug, PartialEq)]
pub struct SecVar {
    /// The VAR type's id.
    pub ty: u32,
    /// Byte offset in the section.
    pub offset: u32,
    /// Bytes.
    pub size: u32,
}

/// A struct member.
#[derive(Clone, Debug, PartialEq)]
pub struct Member {
    /// Name.
    pub name: String,
    /// Type id.
    pub ty: u32,
    /// Offset in bits.
    pub bit_offset: u32,
    /// Bitfield size in bits, 0 if not a bitfield.
    pub bitfield_size: u32,
}

/// A parsed BTF object.
#[derive(Debug, Default)]
pub struct Btf {
    types: Vec<Type>,
}

const BTF_MAGIC: u16 = 0xeb9f;

impl Btf {
    /// Parses raw BTF (header, types, strings) in this host's byte order.
    pub fn parse(data: &[u8]) -> Result<Self, String> {
        let u16_at = |off: usize| {
            data.get(off..off + 2)
                .map(|b| u16::from_ne_bytes([b[0], b[1]]))
        };
        let u32_at = |off: usize| {
            data.get(off..off + 4)
                .map(|b| u32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
        };
        if u16_at(0) != Some(BTF_MAGIC) {
            return Err("not BTF (bad magic)".into());
        }
        let hdr_len = u32_at(4).ok_or("truncated header")? as usize;
        let type_off = u32_at(8).ok_or("truncated header")? as usize;
        let type_len = u32_at(12).ok_or("truncated header")? as usize;
        let str_off = u32_at(16).ok_or("truncated header")? as usize;
        let str_len = u32_at(20).ok_or("truncated header")? as usize;
        let types_start = hdr_len + type_off;
        let strs_start = hdr_len + str_off;
        let strings = data
            .get(strs_start..strs_start + str_len)
            .ok_or("truncated strings")?;
        let name = |off: u32| -> String {
            let s = strings.get(off as usize..).unwrap_or(&[]);
            let end = s.iter().position(|&b| b == 0).unwrap_or(s.len());
            String::from_utf8_lossy(&s[..end]).into_owned()
        };

        let mut types = vec![Type::Void];
        let mut off = types_start;
        let end = types_start + type_len;
        while off < end {
            let name_off = u32_at(off).ok_or("truncated type")?;
            let info = u32_at(off + 4).ok_or("truncated type")?;
            let size_or_type = u32_at(off + 8).ok_or("truncated type")?;
            off += 12;
            let vlen = (info & 0xffff) as usize;
            let kind = (info >> 24) & 0x1f;
            let kflag = info >> 31 == 1;
            let ty = match kind {
                1 => {
                    let enc = u32_at(off).ok_or("truncated int")?;
                    off += 4;
                    let encoding = (enc >> 24) & 0xf;
                    Type::Int {
                        name: name(name_off),
                        size: size_or_type,
                        signed: encoding & 1 != 0,
                        char: encoding & 2 != 0,
                        bool: encoding & 4 != 0,
                    }
                }
                2 => Type::Ptr,
                3 => {
                    let elem = u32_at(off).ok_or("truncated array")?;
                    let len = u32_at(off + 8).ok_or("truncated array")?;
                    off += 12;
                    Type::Array { elem, len }
                }
                4 | 5 => {
                    let mut members = Vec::with_capacity(vlen);
                    for _ in 0..vlen {
                        let m_name = u32_at(off).ok_or("truncated member")?;
                        let m_ty = u32_at(off + 4).ok_or("truncated member")?;
                        let m_off = u32_at(off + 8).ok_or("truncated member")?;
                        off += 12;
                        let (bit_offset, bitfield_size) = if kflag {
                            (m_off & 0xff_ffff, m_off >> 24)
                        } else {
                            (m_off, 0)
                        };
                        members.push(Member {
                            name: name(m_name),
                            ty: m_ty,
                            bit_offset,
                            bitfield_size,
                        });
                    }
                    Type::Struct {
                        name: name(name_off),
                        size: size_or_type,
                        members,
                        union: kind == 5,
                    }
                }
                6 => {
                    let mut values = Vec::with_capacity(vlen);
                    for _ in 0..vlen {
                        let v_name = u32_at(off).ok_or("truncated enum")?;
                        let v = u32_at(off + 4).ok_or("truncated enum")?;
                        off += 8;
                        let v = if kflag {
                            i64::from(v as i32)
                        } else {
                            i64::from(v)
                        };
                        values.push((name(v_name), v));
                    }
                    Type::Enum {
                        name: name(name_off),
                        size: size_or_type,
                        signed: kflag,
                        values,
                    }
                }
                19 => {
                    let mut values = Vec::with_capacity(vlen);
                    for _ in 0..vlen {
                        let v_name = u32_at(off).ok_or("truncated enum64")?;
                        let lo = u32_at(off + 4).ok_or("truncated enum64")?;
                        let hi = u32_at(off + 8).ok_or("truncated enum64")?;
                        off += 12;
                        values.push((name(v_name), ((u64::from(hi) << 32) | u64::from(lo)) as i64));
                    }
                    Type::Enum {
                        name: name(name_off),
                        size: size_or_type,
                        signed: kflag,
                        values,
                    }
                }
                7 => Type::Void, // forward declaration
                8 => Type::Typedef {
                    name: name(name_off),
                    ty: size_or_type,
                },
                9 | 10 | 11 | 18 => Type::Modifier { ty: size_or_type },
                12 => Type::Void, // func
                13 => {
                    off += 8 * vlen; // func proto params
                    Type::Void
                }
                14 => {
                    off += 4; // var linkage
                    Type::Var {
                        name: name(name_off),
                        ty: size_or_type,
                    }
                }
                15 => {
                    let mut vars = Vec::with_capacity(vlen);
                    for _ in 0..vlen {
                        let ty = u32_at(off).ok_or("truncated datasec")?;
                        let offset = u32_at(off + 4).ok_or("truncated datasec")?;
                        let size = u32_at(off + 8).ok_or("truncated datasec")?;
                        off += 12;
                        vars.push(SecVar { ty, offset, size });
                    }
                    Type::Datasec {
                        name: name(name_off),
                        size: size_or_type,
                        vars,
                    }
                }
                16 => Type::Float { size: size_or_type },
                17 => {
                    off += 4; // decl tag component index
                    Type::Void
                }
                other => return Err(format!("unknown BTF kind {other}")),
            };
            types.push(ty);
        }
        Ok(Btf { types })
    }

    /// The type with this id.
    pub fn get(&self, id: u32) -> Option<&Type> {
        self.types.get(id as usize)
    }

    /// BTF made of these types, with ids from 1 (for tests and for types
    /// built by hand).
    #[cfg(test)]
    pub fn from_types(types: impl IntoIterator<Item = Type>) -> Self {
        Btf {
            types: std::iter::once(Type::Void).chain(types).collect(),
        }
    }

    /// Whether a struct named `name` is among the types.
    pub fn has_struct(&self, name: &str) -> bool {
        self.types
            .iter()
            .any(|t| matches!(t, Type::Struct { name: n, .. } if n == name))
    }

    /// The id of the DATASEC named `name` (`.rodata`, `.bss`, ...).
    pub fn datasec(&self, name: &str) -> Option<u32> {
        self.types
            .iter()
            .position(|t| matches!(t, Type::Datasec { name: n, .. } if n == name))
            .and_then(|i| u32::try_from(i).ok())
    }
}
