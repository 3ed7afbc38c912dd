//! A restricted reader for PyTorch checkpoints (`torch.save`: a zip holding `data.pkl` and
//! one file per storage).
//!
//! Pickle is a program for a stack machine, and a hostile one can call any Python function.
//! This reader runs only the data-building part of that machine and knows exactly five
//! callables: `collections.OrderedDict`, `torch._utils._rebuild_tensor_v2`,
//! `torch._utils._rebuild_parameter(_with_state)` and the typed storage classes
//! (`torch.FloatStorage`, ...). Any other `GLOBAL`, and any opcode that would instantiate
//! or call something else (`INST`, `OBJ`, `NEWOBJ`, ...), is refused with its name and byte
//! offset. Nothing is ever executed. Memo entries are shared, not copied, so nested
//! references cannot blow up memory; sizes are checked before anything is allocated.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::path::Path;
use std::rc::Rc;

use ndarray::{ArrayD, IxDyn};

use crate::inn::discretize::checked_elements;

/// Why a checkpoint could not be read.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum PickleError {
    /// The pickle names a callable that is not a tensor record.
    #[error(
        "refusing to load: the pickle calls {module}.{name} (byte {offset}); only tensor records are read, nothing is executed"
    )]
    Refused {
        /// Python module.
        module: String,
        /// Name in the module.
        name: String,
        /// Byte offset in `data.pkl`.
        offset: usize,
    },
    /// An opcode outside the data-only subset.
    #[error("refusing to load: unsupported pickle opcode 0x{opcode:02x} at byte {offset}")]
    Opcode {
        /// The opcode byte.
        opcode: u8,
        /// Byte offset in `data.pkl`.
        offset: usize,
    },
    /// The pickle or the archive is malformed.
    #[error("malformed checkpoint: {0}")]
    Malformed(String),
}

fn bad(detail: impl Into<String>) -> PickleError {
    PickleError::Malformed(detail.into())
}

/// Element types of torch storages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StorageDtype {
    /// float32
    F32,
    /// float64
    F64,
    /// float16
    F16,
    /// bfloat16
    BF16,
    /// int64
    I64,
    /// int32
    I32,
    /// int16
    I16,
    /// int8
    I8,
    /// uint8
    U8,
    /// bool
    Bool,
}

impl StorageDtype {
    fn from_class(name: &str) -> Option<Self> {
        Some(match name {
            "FloatStorage" => Self::F32,
            "DoubleStorage" => Self::F64,
            "HalfStorage" => Self::F16,
            "BFloat16Storage" => Self::BF16,
            "LongStorage" => Self::I64,
            "IntStorage" => Self::I32,
            "ShortStorage" => Self::I16,
            "CharStorage" => Self::I8,
            "ByteStorage" => Self::U8,
            "BoolStorage" => Self::Bool,
            _ => return None,
        })
    }

    /// Bytes per element.
    #[must_use]
    pub fn size(self) -> usize {
        match self {
            Self::F64 | Self::I64 => 8,
            Self::F32 | Self::I32 => 4,
            Self::F16 | Self::BF16 | Self::I16 => 2,
            Self::I8 | Self::U8 | Self::Bool => 1,
        }
    }

    #[expect(
        clippy::cast_precision_loss,
        clippy::cast_possible_truncation,
        reason = "conversion to the model's f32"
    )]
    fn decode(self, b: &[u8]) -> f32 {
        match self {
            Self::F32 => f32::from_le_bytes([b[0], b[1], b[2], b[3]]),
            Self::F64 => f64::from_le_bytes(b[..8].try_into().expect("8 bytes")) as f32,
            Self::F16 => half::f16::from_le_bytes([b[0], b[1]]).to_f32(),
            Self::BF16 => half::bf16::from_le_bytes([b[0], b[1]]).to_f32(),
            Self::I64 => i64::from_le_bytes(b[..8].try_into().expect("8 bytes")) as f32,
            Self::I32 => i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f32,
            Self::I16 => f32::from(i16::from_le_bytes([b[0], b[1]])),
            Self::I8 => f32::from(i8::from_le_bytes([b[0]])),
            Self::U8 | Self::Bool => f32::from(b[0]),
        }
    }
}

/// Where a tensor's numbers are: a storage file and a strided view into it.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorRecord {
    /// Storage file name under `data/`.
    pub storage: String,
    /// Element type of the storage.
    pub dtype: StorageDtype,
    /// Elements in the storage.
    pub storage_numel: usize,
    /// First element of the view.
    pub offset: usize,
    /// Shape of the view.
    pub shape: Vec<usize>,
    /// Strides of the view, in elements.
    pub stride: Vec<usize>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Callable {
    OrderedDict,
    RebuildTensor,
    RebuildParameter,
    Storage(StorageDtype),
}

#[derive(Clone, Debug)]
enum V {
    Mark,
    None,
    Bool,
    Int(i64),
    Float,
    Str(Rc<str>),
    Tuple(Rc<[V]>),
    List(Rc<RefCell<Vec<V>>>),
    Dict(Rc<RefCell<Vec<(V, V)>>>),
    Global(Callable),
    Storage(Rc<(StorageDtype, String, usize)>),
    Tensor(Rc<TensorRecord>),
}

const MAX_STACK: usize = 1 << 20;
const MAX_PICKLE_BYTES: u64 = 64 << 20;

struct Machine<'a> {
    data: &'a [u8],
    pos: usize,
    stack: Vec<V>,
    memo: HashMap<u32, V>,
}

impl<'a> Machine<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], PickleError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.data.len())
            .ok_or_else(|| bad("pickle ends early"))?;
        let s = &self.data[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8, PickleError> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, PickleError> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Result<u32, PickleError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self) -> Result<u64, PickleError> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }
    fn push(&mut self, v: V) -> Result<(), PickleError> {
        if self.stack.len() >= MAX_STACK {
            return Err(bad("pickle stack too deep"));
        }
        self.stack.push(v);
        Ok(())
    }
    fn pop(&mut self) -> Result<V, PickleError> {
        self.stack
            .pop()
            .ok_or_else(|| bad("pickle stack underflow"))
    }
    fn pop_mark(&mut self) -> Result<Vec<V>, PickleError> {
        let at = self
            .stack
            .iter()
            .rposition(|v| matches!(v, V::Mark))
            .ok_or_else(|| bad("pickle MARK missing"))?;
        let items = self.stack.split_off(at + 1);
        self.stack.pop();
        Ok(items)
    }
    fn string(&mut self, n: usize) -> Result<V, PickleError> {
        let b = self.take(n)?;
        let s = std::str::from_utf8(b).map_err(|_| bad("string is not UTF-8"))?;
        Ok(V::Str(Rc::from(s)))
    }
    fn global(&self, module: &str, name: &str, offset: usize) -> Result<V, PickleError> {
        let callable = match (module, name) {
            ("collections", "OrderedDict") => Callable::OrderedDict,
            ("torch._utils", "_rebuild_tensor_v2") => Callable::RebuildTensor,
            ("torch._utils", "_rebuild_parameter" | "_rebuild_parameter_with_state") => {
                Callable::RebuildParameter
            }
            ("torch", class) if StorageDtype::from_class(class).is_some() => {
                Callable::Storage(StorageDtype::from_class(class).expect("checked"))
            }
            _ => {
                return Err(PickleError::Refused {
                    module: module.to_string(),
                    name: name.to_string(),
                    offset,
                });
            }
        };
        Ok(V::Global(callable))
    }
    fn memo_put(&mut self, id: u32) -> Result<(), PickleError> {
        let top = self
            .stack
            .last()
            .cloned()
            .ok_or_else(|| bad("memo of an empty stack"))?;
        if self.memo.len() >= MAX_STACK {
            return Err(bad("pickle memo too large"));
        }
        self.memo.insert(id, top);
        Ok(())
    }
    fn memo_get(&mut self, id: u32) -> Result<(), PickleError> {
        let v = self
            .memo
            .get(&id)
            .cloned()
            .ok_or_else(|| bad(format!("memo entry {id} missing")))?;
        self.push(v)
    }

    #[expect(
        clippy::too_many_lines,
        reason = "one arm per opcode reads best as one match"
    )]
    fn run(mut self) -> Result<V, PickleError> {
        loop {
            let offset = self.pos;
            let op = self.u8()?;
            match op {
                0x80 => {
                    self.u8()?; // PROTO
                }
                0x95 => {
                    self.u64()?; // FRAME
                }
                b'.' => return self.pop(),
                b'(' => self.push(V::Mark)?,
                b'}' => self.push(V::Dict(Rc::default()))?,
                b']' => self.push(V::List(Rc::default()))?,
                b')' => self.push(V::Tuple(Rc::from(Vec::new())))?,
                b't' => {
                    let items = self.pop_mark()?;
                    self.push(V::Tuple(Rc::from(items)))?;
                }
                0x85..=0x87 => {
                    let n = usize::from(op - 0x84);
                    if self.stack.len() < n {
                        return Err(bad("pickle stack underflow"));
                    }
                    let items = self.stack.split_off(self.stack.len() - n);
                    self.push(V::Tuple(Rc::from(items)))?;
                }
                b'N' => self.push(V::None)?,
                0x88 | 0x89 => self.push(V::Bool)?,
                b'J' => {
                    let v = self.u32()?.cast_signed();
                    self.push(V::Int(i64::from(v)))?;
                }
                b'K' => {
                    let v = self.u8()?;
                    self.push(V::Int(i64::from(v)))?;
                }
                b'M' => {
                    let v = self.u16()?;
                    self.push(V::Int(i64::from(v)))?;
                }
                0x8a => {
                    let n = usize::from(self.u8()?);
                    if n > 8 {
                        return Err(bad("integer wider than 64 bits"));
                    }
                    let b = self.take(n)?;
                    let mut buf = if b.last().is_some_and(|x| x & 0x80 != 0) {
                        [0xff; 8]
                    } else {
                        [0; 8]
                    };
                    buf[..n].copy_from_slice(b);
                    self.push(V::Int(i64::from_le_bytes(buf)))?;
                }
                b'G' => {
                    self.take(8)?;
                    self.push(V::Float)?;
                }
                b'X' => {
                    let n = self.u32()? as usize;
                    let s = self.string(n)?;
                    self.push(s)?;
                }
                0x8c => {
                    let n = usize::from(self.u8()?);
                    let s = self.string(n)?;
                    self.push(s)?;
                }
                0x8d => {
                    let n = usize::try_from(self.u64()?).map_err(|_| bad("string too long"))?;
                    let s = self.string(n)?;
                    self.push(s)?;
                }
                b'c' => {
                    let rest = &self.data[self.pos..];
                    let line = |s: &[u8]| s.iter().position(|&b| b == b'\n');
                    let m_end = line(rest).ok_or_else(|| bad("GLOBAL without module"))?;
                    let module = String::from_utf8_lossy(&rest[..m_end]).into_owned();
                    let rest2 = &rest[m_end + 1..];
                    let n_end = line(rest2).ok_or_else(|| bad("GLOBAL without name"))?;
                    let name = String::from_utf8_lossy(&rest2[..n_end]).into_owned();
                    self.pos += m_end + 1 + n_end + 1;
                    let v = self.global(&module, &name, offset)?;
                    self.push(v)?;
                }
                0x93 => {
                    let (V::Str(name), V::Str(module)) = (self.pop()?, self.pop()?) else {
                        return Err(bad("STACK_GLOBAL needs two strings"));
                    };
                    let v = self.global(&module, &name, offset)?;
                    self.push(v)?;
                }
                b'q' => {
                    let id = u32::from(self.u8()?);
                    self.memo_put(id)?;
                }
                b'r' => {
                    let id = self.u32()?;
                    self.memo_put(id)?;
                }
                0x94 => {
                    let id = u32::try_from(self.memo.len()).map_err(|_| bad("memo too large"))?;
                    self.memo_put(id)?;
                }
                b'h' => {
                    let id = u32::from(self.u8()?);
                    self.memo_get(id)?;
                }
                b'j' => {
                    let id = self.u32()?;
                    self.memo_get(id)?;
                }
                b'Q' => {
                    let pid = self.pop()?;
                    let v = persistent_storage(&pid)?;
                    self.push(v)?;
                }
                b'R' => {
                    let args = self.pop()?;
                    let callable = self.pop()?;
                    let v = reduce(&callable, &args)?;
                    self.push(v)?;
                }
                b'b' => {
                    let _state = self.pop()?;
                    match self.stack.last() {
                        // OrderedDict attributes (`_metadata`) and tensor state: not needed.
                        Some(V::Dict(_) | V::Tensor(_)) => {}
                        _ => {
                            return Err(bad(format!(
                                "BUILD on something other than a dict or tensor at byte {offset}"
                            )));
                        }
                    }
                }
                b's' => {
                    let value = self.pop()?;
                    let key = self.pop()?;
                    match self.stack.last() {
                        Some(V::Dict(d)) => d.borrow_mut().push((key, value)),
                        _ => return Err(bad("SETITEM outside a dict")),
                    }
                }
                b'u' => {
                    let items = self.pop_mark()?;
                    if items.len() % 2 != 0 {
                        return Err(bad("SETITEMS with an odd number of items"));
                    }
                    match self.stack.last() {
                        Some(V::Dict(d)) => {
                            let mut d = d.borrow_mut();
                            let mut it = items.into_iter();
                            while let (Some(k), Some(v)) = (it.next(), it.next()) {
                                d.push((k, v));
                            }
                        }
                        _ => return Err(bad("SETITEMS outside a dict")),
                    }
                }
                b'a' => {
                    let value = self.pop()?;
                    match self.stack.last() {
                        Some(V::List(l)) => l.borrow_mut().push(value),
                        _ => return Err(bad("APPEND outside a list")),
                    }
                }
                b'e' => {
                    let items = self.pop_mark()?;
                    match self.stack.last() {
                        Some(V::List(l)) => l.borrow_mut().extend(items),
                        _ => return Err(bad("APPENDS outside a list")),
                    }
                }
                _ => return Err(PickleError::Opcode { opcode: op, offset }),
            }
        }
    }
}

fn int_of(v: &V) -> Result<usize, PickleError> {
    match v {
        V::Int(i) => usize::try_from(*i).map_err(|_| bad(format!("negative size {i}"))),
        _ => Err(bad("expected an integer")),
    }
}

fn ints_of(v: &V) -> Result<Vec<usize>, PickleError> {
    match v {
        V::Tuple(items) => items.iter().map(int_of).collect(),
        _ => Err(bad("expected a tuple of integers")),
    }
}

fn persistent_storage(pid: &V) -> Result<V, PickleError> {
    let V::Tuple(items) = pid else {
        return Err(bad("persistent id is not a tuple"));
    };
    match &items[..] {
        [
            V::Str(tag),
            V::Global(Callable::Storage(dtype)),
            V::Str(key),
            V::Str(_location),
            numel,
        ] if &**tag == "storage" => {
            if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(bad(format!("storage key {key:?} is not a plain name")));
            }
            Ok(V::Storage(Rc::new((
                *dtype,
                key.to_string(),
                int_of(numel)?,
            ))))
        }
        _ => Err(bad("persistent id is not a torch storage record")),
    }
}

fn reduce(callable: &V, args: &V) -> Result<V, PickleError> {
    let V::Tuple(args) = args else {
        return Err(bad("REDUCE arguments are not a tuple"));
    };
    match callable {
        V::Global(Callable::OrderedDict) => {
            if !args.is_empty() {
                return Err(bad("OrderedDict with arguments"));
            }
            Ok(V::Dict(Rc::default()))
        }
        V::Global(Callable::RebuildTensor) => {
            let [V::Storage(storage), offset, size, stride, ..] = &args[..] else {
                return Err(bad("_rebuild_tensor_v2 with unexpected arguments"));
            };
            let (dtype, key, numel) = &**storage;
            let record = TensorRecord {
                storage: key.clone(),
                dtype: *dtype,
                storage_numel: *numel,
                offset: int_of(offset)?,
                shape: ints_of(size)?,
                stride: ints_of(stride)?,
            };
            if record.shape.len() != record.stride.len() {
                return Err(bad("tensor shape and stride differ in rank"));
            }
            Ok(V::Tensor(Rc::new(record)))
        }
        V::Global(Callable::RebuildParameter) => match args.first() {
            Some(t @ V::Tensor(_)) => Ok(t.clone()),
            _ => Err(bad("_rebuild_parameter without a tensor")),
        },
        _ => Err(bad("REDUCE of something that is not callable here")),
    }
}

/// Parse a `data.pkl` into tensor records by key (the data-only subset, see the module doc).
/// A top-level dict holding a `state_dict` dict is unwrapped.
///
/// # Errors
/// Refused callables or opcodes, malformed pickles.
pub fn parse_state_dict(pickle: &[u8]) -> Result<Vec<(String, TensorRecord)>, PickleError> {
    let machine = Machine {
        data: pickle,
        pos: 0,
        stack: Vec::new(),
        memo: HashMap::new(),
    };
    let mut top = machine.run()?;
    let nested = match &top {
        V::Dict(d) => d
            .borrow()
            .iter()
            .find(|(k, v)| {
                matches!(k, V::Str(s) if &**s == "state_dict") && matches!(v, V::Dict(_))
            })
            .map(|(_, v)| v.clone()),
        _ => return Err(bad("the checkpoint is not a dict of tensors")),
    };
    if let Some(inner) = nested {
        top = inner;
    }
    let V::Dict(d) = top else {
        return Err(bad("the checkpoint is not a dict of tensors"));
    };
    let records = d
        .borrow()
        .iter()
        .filter_map(|(k, v)| match (k, v) {
            (V::Str(k), V::Tensor(t)) => Some((k.to_string(), (**t).clone())),
            _ => None,
        })
        .collect();
    Ok(records)
}

/// Read every tensor of a `torch.save` checkpoint as f32.
///
/// # Errors
/// Not a zip, no `data.pkl`, refused pickles, storages that do not hold what the records
/// claim, tensors too large.
pub fn read_checkpoint(path: &Path) -> Result<BTreeMap<String, ArrayD<f32>>, PickleError> {
    let file = std::fs::File::open(path).map_err(|e| bad(format!("{}: {e}", path.display())))?;
    let mut zip = zip::ZipArchive::new(std::io::BufReader::new(file)).map_err(|e| {
        bad(format!(
            "not a torch.save zip archive ({e}); the legacy pre-1.6 format is not supported"
        ))
    })?;
    let pkl_name = zip
        .file_names()
        .filter_map(Result::ok)
        .find(|n| n.ends_with("/data.pkl") || n == "data.pkl")
        .map(std::borrow::Cow::into_owned)
        .ok_or_else(|| bad("no data.pkl in the archive"))?;
    let prefix = pkl_name.strip_suffix("data.pkl").unwrap_or("").to_string();
    if let Ok(mut f) = zip.by_name(&format!("{prefix}byteorder")) {
        let mut order = String::new();
        f.by_ref()
            .take(16)
            .read_to_string(&mut order)
            .map_err(|e| bad(e.to_string()))?;
        if order.trim() != "little" {
            return Err(bad(format!("byte order {order:?} is not supported")));
        }
    }
    let pickle = {
        let f = zip.by_name(&pkl_name).map_err(|e| bad(e.to_string()))?;
        if f.size() > MAX_PICKLE_BYTES {
            return Err(bad(format!(
                "data.pkl is {} bytes, more than a state_dict needs",
                f.size()
            )));
        }
        let mut buf = Vec::new();
        f.take(MAX_PICKLE_BYTES)
            .read_to_end(&mut buf)
            .map_err(|e| bad(format!("data.pkl: {e}")))?;
        buf
    };
    let records = parse_state_dict(&pickle)?;
    let mut storages: HashMap<String, Vec<u8>> = HashMap::new();
    let mut out = BTreeMap::new();
    for (key, rec) in records {
        let numel = checked_elements(&rec.shape).map_err(|e| bad(format!("{key}: {e}")))?;
        checked_elements(&[rec.storage_numel]).map_err(|e| bad(format!("{key}: storage: {e}")))?;
        if !storages.contains_key(&rec.storage) {
            let name = format!("{prefix}data/{}", rec.storage);
            let f = zip
                .by_name(&name)
                .map_err(|e| bad(format!("{key}: storage {name}: {e}")))?;
            let want = rec
                .storage_numel
                .checked_mul(rec.dtype.size())
                .ok_or_else(|| bad("storage size overflows"))?;
            if f.size() != want as u64 {
                return Err(bad(format!(
                    "{key}: storage {name} holds {} bytes, the record says {want}",
                    f.size()
                )));
            }
            let mut buf = Vec::with_capacity(want);
            f.take(want as u64)
                .read_to_end(&mut buf)
                .map_err(|e| bad(format!("{key}: {e}")))?;
            if buf.len() != want {
                return Err(bad(format!("{key}: storage {name} is truncated")));
            }
            storages.insert(rec.storage.clone(), buf);
        }
        let data = &storages[&rec.storage];
        if numel > 0 {
            let last = rec
                .shape
                .iter()
                .zip(&rec.stride)
                .try_fold(rec.offset, |acc, (&n, &s)| {
                    acc.checked_add((n - 1).checked_mul(s)?)
                })
                .ok_or_else(|| bad(format!("{key}: view overflows")))?;
            if last >= rec.storage_numel {
                return Err(bad(format!(
                    "{key}: view reaches element {last} of a {}-element storage",
                    rec.storage_numel
                )));
            }
        }
        let size = rec.dtype.size();
        let mut values = Vec::with_capacity(numel);
        let mut index = vec![0_usize; rec.shape.len()];
        for _ in 0..numel {
            let at = rec.offset
                + index
                    .iter()
                    .zip(&rec.stride)
                    .map(|(i, s)| i * s)
                    .sum::<usize>();
            values.push(rec.dtype.decode(&data[at * size..(at + 1) * size]));
            for d in (0..index.len()).rev() {
                index[d] += 1;
                if index[d] < rec.shape[d] {
                    break;
                }
                index[d] = 0;
            }
        }
        let array =
            ArrayD::from_shape_vec(IxDyn(&rec.shape), values).map_err(|e| bad(e.to_string()))?;
        out.insert(key, array);
    }
    Ok(out)
}
