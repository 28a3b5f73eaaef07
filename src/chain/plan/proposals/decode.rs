//! The protobuf of the gov `Proposals` answers, decoded by hand with `proto.rs`'s checked field
//! reader: the page (`QueryProposalsResponse { repeated Proposal proposals = 1; PageResponse
//! pagination = 2; }`, `PageResponse { bytes next_key = 1; uint64 total = 2; }`), each proposal
//! in its gov v1 or v1beta1 shape, and the upgrade plans its messages or content carry.
//!
//! gov v1 (`cosmos/gov/v1/gov.proto`): `Proposal { uint64 id = 1; repeated Any messages = 2;
//! ProposalStatus status = 3; … Timestamp voting_end_time = 9; string metadata = 10; string
//! title = 11; … }`. gov v1beta1: `Proposal { uint64 proposal_id = 1; Any content = 2;
//! ProposalStatus status = 3; … Timestamp voting_end_time = 9; }`. `Any { string type_url = 1;
//! bytes value = 2; }`. The upgrades (`cosmos/upgrade/v1beta1/tx.proto`, `upgrade.proto`, and
//! `cosmos/gov/v1/tx.proto`): `MsgSoftwareUpgrade { string authority = 1; Plan plan = 2; }`,
//! `MsgExecLegacyContent { Any content = 1; string authority = 2; }` and the legacy content
//! `SoftwareUpgradeProposal { string title = 1; string description = 2; Plan plan = 3; }`.

use super::super::proto::{DecodeError, Fields, Wire, decode_plan};
use super::{ProposalError, Proposed};

/// The gov module's `ProposalStatus` the query asks for: PROPOSAL_STATUS_VOTING_PERIOD.
pub(super) const VOTING_PERIOD: u64 = 2;
/// How many proposals a page may hold (`PageRequest.limit`); the SDK's default is 100.
const PAGE_LIMIT: u64 = 100;

const MSG_SOFTWARE_UPGRADE: &str = "cosmos.upgrade.v1beta1.MsgSoftwareUpgrade";
const MSG_EXEC_LEGACY_CONTENT: &str = "cosmos.gov.v1.MsgExecLegacyContent";
const SOFTWARE_UPGRADE_PROPOSAL: &str = "cosmos.upgrade.v1beta1.SoftwareUpgradeProposal";

/// Which gov API answered: the shape of its proposals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Gov {
    V1,
    V1beta1,
}

impl Gov {
    pub(super) fn method(self) -> &'static str {
        match self {
            Gov::V1 => "/cosmos.gov.v1.Query/Proposals",
            Gov::V1beta1 => "/cosmos.gov.v1beta1.Query/Proposals",
        }
    }
}

/// One page of the answer: the upgrades its proposals carry, and the key of the next page
/// (empty on the last).
#[derive(Debug)]
pub(crate) struct Page {
    pub(crate) proposed: Vec<Proposed>,
    pub(crate) next_key: Vec<u8>,
}

/// `QueryProposalsRequest { ProposalStatus proposal_status = 1; string voter = 2; string
/// depositor = 3; PageRequest pagination = 4; }` (the same numbers in v1 and v1beta1), asking
/// for the proposals in their voting period from `key` on (`PageRequest { bytes key = 1;
/// uint64 offset = 2; uint64 limit = 3; … }`).
pub(crate) fn request(key: &[u8]) -> Vec<u8> {
    let mut page = Vec::new();
    if !key.is_empty() {
        bytes_field(&mut page, 1, key);
    }
    put(&mut page, 3 << 3);
    put(&mut page, PAGE_LIMIT);
    let mut out = Vec::new();
    put(&mut out, 1 << 3);
    put(&mut out, VOTING_PERIOD);
    bytes_field(&mut out, 4, &page);
    out
}

fn put(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn bytes_field(out: &mut Vec<u8>, number: u64, bytes: &[u8]) {
    put(out, number << 3 | 2);
    put(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// A field that is not what the message declares.
fn wrong(message: &'static str, number: u64, field: &'static str) -> DecodeError {
    DecodeError::WrongType {
        message,
        number,
        field,
    }
}

/// The upgrades of one `QueryProposalsResponse` page, and its `next_key`.
pub(crate) fn decode_page(message: &[u8], gov: Gov) -> Result<Page, ProposalError> {
    const WHAT: &str = "the Proposals answer";
    let mut page = Page {
        proposed: Vec::new(),
        next_key: Vec::new(),
    };
    for field in Fields(message) {
        match field? {
            (1, Wire::Bytes(b)) => page.proposed.extend(decode_proposal(b, gov)?),
            (1, _) => return Err(wrong(WHAT, 1, "proposals").into()),
            (2, Wire::Bytes(b)) => page.next_key = next_key(b)?,
            (2, _) => return Err(wrong(WHAT, 2, "pagination").into()),
            _ => {}
        }
    }
    Ok(page)
}

/// `PageResponse.next_key`.
fn next_key(message: &[u8]) -> Result<Vec<u8>, DecodeError> {
    let mut key = Vec::new();
    for field in Fields(message) {
        match field? {
            (1, Wire::Bytes(b)) => key = b.to_vec(),
            (1, _) => return Err(wrong("the pagination", 1, "next_key")),
            (2, Wire::Varint(_)) => {}
            (2, _) => return Err(wrong("the pagination", 2, "total")),
            _ => {}
        }
    }
    Ok(key)
}

/// A proposal as the answer gives it, before its messages are read.
#[derive(Default)]
struct Raw<'a> {
    id: u64,
    /// The `Any`s: v1's messages, or v1beta1's one content.
    messages: Vec<&'a [u8]>,
    status: u64,
    voting_end: Option<i64>,
    title: String,
}

fn decode_proposal(message: &[u8], gov: Gov) -> Result<Vec<Proposed>, ProposalError> {
    const WHAT: &str = "a proposal";
    let mut raw = Raw::default();
    for field in Fields(message) {
        match (field?, gov) {
            ((1, Wire::Varint(v)), _) => raw.id = v,
            ((1, _), _) => return Err(wrong(WHAT, 1, "id").into()),
            ((2, Wire::Bytes(b)), _) => raw.messages.push(b),
            ((2, _), Gov::V1) => return Err(wrong(WHAT, 2, "messages").into()),
            ((2, _), Gov::V1beta1) => return Err(wrong(WHAT, 2, "content").into()),
            ((3, Wire::Varint(v)), _) => raw.status = v,
            ((3, _), _) => return Err(wrong(WHAT, 3, "status").into()),
            ((9, Wire::Bytes(b)), _) => raw.voting_end = Some(seconds(b)?),
            ((9, _), _) => return Err(wrong(WHAT, 9, "voting_end_time").into()),
            ((11, Wire::Bytes(b)), Gov::V1) => raw.title = text(b, WHAT, "title")?,
            ((11, _), Gov::V1) => return Err(wrong(WHAT, 11, "title").into()),
            _ => {}
        }
    }
    // The query asked for the voting period; a node that answers others is not trusted with
    // them, and they are no proposal in voting.
    if raw.status != VOTING_PERIOD {
        return Ok(Vec::new());
    }
    if raw.id == 0 {
        return Err(ProposalError::NoId);
    }
    let mut out = Vec::new();
    for message in &raw.messages {
        let (type_url, value) =
            any(message).map_err(|source| ProposalError::Message { id: raw.id, source })?;
        let upgrade = upgrade(&type_url, value).map_err(|source| ProposalError::Upgrade {
            id: raw.id,
            type_url: type_url.clone(),
            source,
        })?;
        if let Some((content_title, plan)) = upgrade {
            let title = match raw.title.is_empty() {
                true => content_title,
                false => raw.title.clone(),
            };
            out.push(Proposed {
                id: raw.id,
                plan,
                title,
                voting_end_unix: raw.voting_end,
            });
        }
    }
    Ok(out)
}

/// The plan a message (or a legacy content) of `type_url` carries, with the content's title;
/// none when it is no software upgrade.
fn upgrade(
    type_url: &str,
    value: &[u8],
) -> Result<Option<(String, crate::tree::Plan)>, DecodeError> {
    // "/cosmos.upgrade.v1beta1.MsgSoftwareUpgrade"; a host before the slash is allowed.
    let name = type_url.rsplit('/').next().unwrap_or(type_url);
    match name {
        MSG_SOFTWARE_UPGRADE => {
            let plan = plan_field(value, "MsgSoftwareUpgrade", 2)?;
            Ok(Some((String::new(), plan)))
        }
        SOFTWARE_UPGRADE_PROPOSAL => software_upgrade_proposal(value).map(Some),
        MSG_EXEC_LEGACY_CONTENT => {
            let mut content = None;
            for field in Fields(value) {
                match field? {
                    (1, Wire::Bytes(b)) => content = Some(any(b)?),
                    (1, _) => return Err(wrong("MsgExecLegacyContent", 1, "content")),
                    (2, Wire::Bytes(_)) => {}
                    (2, _) => return Err(wrong("MsgExecLegacyContent", 2, "authority")),
                    _ => {}
                }
            }
            match content {
                Some((url, bytes)) if url.rsplit('/').next() == Some(SOFTWARE_UPGRADE_PROPOSAL) => {
                    software_upgrade_proposal(bytes).map(Some)
                }
                // A text proposal, a parameter change, …: no upgrade.
                _ => Ok(None),
            }
        }
        _ => Ok(None),
    }
}

fn software_upgrade_proposal(value: &[u8]) -> Result<(String, crate::tree::Plan), DecodeError> {
    const WHAT: &str = "SoftwareUpgradeProposal";
    let mut title = String::new();
    for field in Fields(value) {
        match field? {
            (1, Wire::Bytes(b)) => title = text(b, WHAT, "title")?,
            (1, _) => return Err(wrong(WHAT, 1, "title")),
            _ => {}
        }
    }
    Ok((title, plan_field(value, WHAT, 3)?))
}

/// The `Plan` in field `number` of `message` (named `what`): required.
fn plan_field(
    message: &[u8],
    what: &'static str,
    number: u64,
) -> Result<crate::tree::Plan, DecodeError> {
    let mut plan = None;
    for field in Fields(message) {
        match field? {
            (n, Wire::Bytes(b)) if n == number => plan = Some(decode_plan(b)?),
            (n, _) if n == number => return Err(wrong(what, number, "plan")),
            _ => {}
        }
    }
    plan.ok_or(DecodeError::NoPlan(what))
}

/// A `google.protobuf.Any`: its type URL and its bytes.
fn any(message: &[u8]) -> Result<(String, &[u8]), DecodeError> {
    const WHAT: &str = "a google.protobuf.Any";
    let (mut url, mut value) = (String::new(), &[][..]);
    for field in Fields(message) {
        match field? {
            (1, Wire::Bytes(b)) => url = text(b, WHAT, "type_url")?,
            (1, _) => return Err(wrong(WHAT, 1, "type_url")),
            (2, Wire::Bytes(b)) => value = b,
            (2, _) => return Err(wrong(WHAT, 2, "value")),
            _ => {}
        }
    }
    Ok((url, value))
}

/// A `google.protobuf.Timestamp`'s seconds (`int64 seconds = 1; int32 nanos = 2;`).
fn seconds(message: &[u8]) -> Result<i64, DecodeError> {
    const WHAT: &str = "voting_end_time";
    let mut seconds = 0i64;
    for field in Fields(message) {
        match field? {
            // int64: the varint of the two's complement.
            (1, Wire::Varint(v)) => seconds = v as i64,
            (1, _) => return Err(wrong(WHAT, 1, "seconds")),
            (2, Wire::Varint(_)) => {}
            (2, _) => return Err(wrong(WHAT, 2, "nanos")),
            _ => {}
        }
    }
    Ok(seconds)
}

fn text(bytes: &[u8], message: &'static str, field: &'static str) -> Result<String, DecodeError> {
    String::from_utf8(bytes.to_vec()).map_err(|source| DecodeError::TextNotUtf8 {
        message,
        field,
        source,
    })
}
