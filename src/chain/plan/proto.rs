//! The protobuf of the CurrentPlan answer, decoded by hand: `QueryCurrentPlanResponse { Plan
//! plan = 1; }` and the plan's name, height and info. Every length, field number and varint is
//! checked: what does not decode is an error, never "no plan". The field reader and the plan
//! decoder serve the gov Proposals answers too (`proposals/decode.rs`).

use crate::tree::Plan;

/// Why an answer is not a `QueryCurrentPlanResponse` (with a plan that has a name and a height,
/// when it has one).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("field 1 (plan) is not a message")]
    PlanNotMessage,
    #[error("the plan's field {number} ({name}) has the wrong wire type")]
    WrongWireType { number: u64, name: &'static str },
    #[error("the chain's plan has no name or height (name {name:?}, height {height})")]
    Incomplete { name: String, height: i64 },
    #[error("the plan's {field} is not UTF-8")]
    NotUtf8 {
        field: &'static str,
        source: std::string::FromUtf8Error,
    },
    #[error("a protobuf field number of {0}")]
    FieldNumber(u64),
    #[error("truncated message")]
    Truncated,
    #[error("a field of {len} bytes where {left} are left (truncated message)")]
    FieldPastEnd { len: u64, left: usize },
    #[error("unknown protobuf wire type {0}")]
    WireType(u64),
    #[error("truncated varint")]
    VarintTruncated,
    #[error("a varint larger than 64 bits")]
    VarintTooLarge,
    #[error("a varint longer than 10 bytes")]
    VarintTooLong,
    /// A field of another message than the plan (a proposal, a `google.protobuf.Any`, …).
    #[error("{message}'s field {number} ({field}) has the wrong wire type")]
    WrongType {
        message: &'static str,
        number: u64,
        field: &'static str,
    },
    #[error("{message}'s {field} is not UTF-8")]
    TextNotUtf8 {
        message: &'static str,
        field: &'static str,
        source: std::string::FromUtf8Error,
    },
    #[error("{0} has no plan")]
    NoPlan(&'static str),
}

/// The plan in a `QueryCurrentPlanResponse` (none when the chain has none).
pub(super) fn decode_response(message: &[u8]) -> Result<Option<Plan>, DecodeError> {
    let mut plan = None;
    for field in Fields(message) {
        match field? {
            (1, Wire::Bytes(bytes)) => plan = Some(decode_plan(bytes)?),
            // A plan that is not a message is not "no plan".
            (1, _) => return Err(DecodeError::PlanNotMessage),
            _ => {}
        }
    }
    Ok(plan)
}

pub(super) fn decode_plan(message: &[u8]) -> Result<Plan, DecodeError> {
    let (mut name, mut height, mut info) = (String::new(), 0i64, String::new());
    for field in Fields(message) {
        match field? {
            (1, Wire::Bytes(b)) => name = text(b, "name")?,
            // int64 is a varint of the two's complement: negative heights are refused below.
            (3, Wire::Varint(v)) => height = v as i64,
            (4, Wire::Bytes(b)) => info = text(b, "info")?,
            (2 | 5, Wire::Bytes(_)) => {}
            (number @ (1..=5), _) => {
                let what = ["name", "time", "height", "info", "upgraded_client_state"];
                return Err(DecodeError::WrongWireType {
                    number,
                    name: what[number as usize - 1],
                });
            }
            _ => {}
        }
    }
    if name.is_empty() || height <= 0 {
        return Err(DecodeError::Incomplete { name, height });
    }
    Ok(Plan {
        name,
        height: height as u64,
        info,
    })
}

pub(super) fn text(bytes: &[u8], field: &'static str) -> Result<String, DecodeError> {
    String::from_utf8(bytes.to_vec()).map_err(|source| DecodeError::NotUtf8 { field, source })
}

pub(super) enum Wire<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    Fixed,
}

/// The fields of a protobuf message: (number, value).
pub(super) struct Fields<'a>(pub(super) &'a [u8]);

impl<'a> Iterator for Fields<'a> {
    type Item = Result<(u64, Wire<'a>), DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.0.is_empty() {
            return None;
        }
        let result = (|| {
            let key = varint(&mut self.0)?;
            // Field numbers are 1 to 2^29 - 1.
            let number = key >> 3;
            if number == 0 || number > MAX_FIELD {
                return Err(DecodeError::FieldNumber(number));
            }
            let wire = match key & 7 {
                0 => Wire::Varint(varint(&mut self.0)?),
                1 => {
                    self.0 = self.0.get(8..).ok_or(DecodeError::Truncated)?;
                    Wire::Fixed
                }
                2 => {
                    let len = varint(&mut self.0)?;
                    let bytes = usize::try_from(len)
                        .ok()
                        .and_then(|len| self.0.get(..len))
                        .ok_or(DecodeError::FieldPastEnd {
                            len,
                            left: self.0.len(),
                        })?;
                    self.0 = &self.0[bytes.len()..];
                    Wire::Bytes(bytes)
                }
                5 => {
                    self.0 = self.0.get(4..).ok_or(DecodeError::Truncated)?;
                    Wire::Fixed
                }
                other => return Err(DecodeError::WireType(other)),
            };
            Ok((number, wire))
        })();
        if result.is_err() {
            self.0 = &[];
        }
        Some(result)
    }
}

/// The largest protobuf field number.
const MAX_FIELD: u64 = (1 << 29) - 1;

/// A base-128 varint of at most 10 bytes, whose 10th byte holds only bit 63: more is an error,
/// not bits silently shifted out.
pub(super) fn varint(bytes: &mut &[u8]) -> Result<u64, DecodeError> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let (&b, rest) = bytes.split_first().ok_or(DecodeError::VarintTruncated)?;
        *bytes = rest;
        let bits = u64::from(b & 0x7f);
        if shift == 63 && bits > 1 {
            return Err(DecodeError::VarintTooLarge);
        }
        value |= bits << shift;
        if b & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(DecodeError::VarintTooLong)
}
