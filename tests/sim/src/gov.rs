//! The gov module's `Proposals` query, as the node answers it over gRPC and `abci_query`: the
//! proposals of `data/sim-proposals.json` in their voting period, gov v1 (a `MsgSoftwareUpgrade`
//! or a legacy `SoftwareUpgradeProposal` in a `MsgExecLegacyContent`) or v1beta1 (the content),
//! page by page as the SDK paginates (`next_key`: the next proposal's id, 8 bytes big-endian, as
//! the store's key ends). With `gov_v1` false, gov v1 is unknown, as on an SDK 0.45 chain.

use crate::grpc::{bytes_field, plan_message, varint};
use crate::node::Node;

pub const V1: &str = "/cosmos.gov.v1.Query/Proposals";
pub const V1BETA1: &str = "/cosmos.gov.v1beta1.Query/Proposals";
const AUTHORITY: &str = "cosmos10d07y265gmmuvt4z0w9aw880jnsr700j6zn9kn";

/// Why a gov query has no answer: the chain has no such module version.
pub struct Unknown;

/// The answer to `method` with `request`; none when `method` is not a gov Proposals query.
pub fn answer(node: &Node, method: &str, request: &[u8]) -> Option<Result<Vec<u8>, Unknown>> {
    let v1 = match method {
        V1 if !node.cfg.gov_v1 => return Some(Err(Unknown)),
        V1 => true,
        V1BETA1 => false,
        _ => return None,
    };
    let (status, key, limit) = read_request(request);
    let limit = match (limit, node.cfg.gov_page_size) {
        (0, 0) => 100,
        (0, page) => page,
        (asked, 0) => asked,
        (asked, page) => asked.min(page),
    };
    let mut proposals = node.proposals();
    proposals.sort_by_key(|p| p.id);
    // Only the voting period is kept in this chain's store.
    if status != 2 {
        proposals.clear();
    }
    let from = key.map_or(0, u64::from_be_bytes);
    let rest: Vec<_> = proposals.iter().filter(|p| p.id >= from).collect();
    let mut out = Vec::new();
    for p in rest.iter().take(limit as usize) {
        let upgrade = plan_message(&p.name, p.height, &p.info);
        let content = {
            let mut c = Vec::new();
            bytes_field(&mut c, 1, p.title.as_bytes());
            bytes_field(&mut c, 2, b"");
            bytes_field(&mut c, 3, &upgrade);
            any("/cosmos.upgrade.v1beta1.SoftwareUpgradeProposal", &c)
        };
        let mut proposal = Vec::new();
        varint(&mut proposal, 1 << 3);
        varint(&mut proposal, p.id);
        let message = match (v1, p.legacy) {
            (false, _) => content,
            (true, true) => {
                let mut m = Vec::new();
                bytes_field(&mut m, 1, &content);
                bytes_field(&mut m, 2, AUTHORITY.as_bytes());
                any("/cosmos.gov.v1.MsgExecLegacyContent", &m)
            }
            (true, false) => {
                let mut m = Vec::new();
                bytes_field(&mut m, 1, AUTHORITY.as_bytes());
                bytes_field(&mut m, 2, &upgrade);
                any("/cosmos.upgrade.v1beta1.MsgSoftwareUpgrade", &m)
            }
        };
        bytes_field(&mut proposal, 2, &message);
        varint(&mut proposal, 3 << 3);
        varint(&mut proposal, 2);
        if let Some(end) = p.voting_end {
            let mut time = Vec::new();
            varint(&mut time, 1 << 3);
            varint(&mut time, end as u64);
            bytes_field(&mut proposal, 9, &time);
        }
        if v1 && !p.title.is_empty() {
            bytes_field(&mut proposal, 11, p.title.as_bytes());
        }
        bytes_field(&mut out, 1, &proposal);
    }
    let mut pagination = Vec::new();
    if let Some(next) = rest.get(limit as usize) {
        bytes_field(&mut pagination, 1, &next.id.to_be_bytes());
    }
    varint(&mut pagination, 2 << 3);
    varint(&mut pagination, proposals.len() as u64);
    bytes_field(&mut out, 2, &pagination);
    Some(Ok(out))
}

fn any(type_url: &str, value: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    bytes_field(&mut out, 1, type_url.as_bytes());
    bytes_field(&mut out, 2, value);
    out
}

/// `QueryProposalsRequest`: the status asked, the page's key (8 bytes) and limit. What does
/// not read is left at its default: this is a test double, not a validator.
fn read_request(mut bytes: &[u8]) -> (u64, Option<[u8; 8]>, u64) {
    let (mut status, mut key, mut limit) = (0, None, 0);
    while let Some((number, value)) = field(&mut bytes) {
        match (number, value) {
            (1, Value::Varint(v)) => status = v,
            (4, Value::Bytes(mut page)) => {
                while let Some((n, v)) = field(&mut page) {
                    match (n, v) {
                        (1, Value::Bytes(k)) => key = k.try_into().ok(),
                        (3, Value::Varint(l)) => limit = l,
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    (status, key, limit)
}

enum Value<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
}

fn field<'a>(bytes: &mut &'a [u8]) -> Option<(u64, Value<'a>)> {
    let key = read_varint(bytes)?;
    let value = match key & 7 {
        0 => Value::Varint(read_varint(bytes)?),
        2 => {
            let len = read_varint(bytes)? as usize;
            let value = bytes.get(..len)?;
            *bytes = &bytes[len..];
            Value::Bytes(value)
        }
        _ => return None,
    };
    Some((key >> 3, value))
}

fn read_varint(bytes: &mut &[u8]) -> Option<u64> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let (&b, rest) = bytes.split_first()?;
        *bytes = rest;
        value |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}
