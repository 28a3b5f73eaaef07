//! A test-only protobuf encoder for the gov answers, and the fixtures that follow real
//! proposals (see `mod.rs`).

pub(crate) fn put(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

pub(crate) fn bytes(out: &mut Vec<u8>, number: u64, value: &[u8]) {
    put(out, number << 3 | 2);
    put(out, value.len() as u64);
    out.extend_from_slice(value);
}

pub(crate) fn varint(out: &mut Vec<u8>, number: u64, value: u64) {
    put(out, number << 3);
    put(out, value);
}

pub(crate) fn timestamp(seconds: i64, nanos: u32) -> Vec<u8> {
    let mut out = Vec::new();
    varint(&mut out, 1, seconds as u64);
    if nanos > 0 {
        varint(&mut out, 2, u64::from(nanos));
    }
    out
}

/// A `Plan` as gogoproto writes a height-based one: the zero time encoded.
pub(crate) fn plan(name: &str, height: i64, info: &str) -> Vec<u8> {
    let mut out = Vec::new();
    bytes(&mut out, 1, name.as_bytes());
    bytes(&mut out, 2, &timestamp(-62_135_596_800, 0));
    varint(&mut out, 3, height as u64);
    if !info.is_empty() {
        bytes(&mut out, 4, info.as_bytes());
    }
    out
}

pub(crate) fn any(type_url: &str, value: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    bytes(&mut out, 1, type_url.as_bytes());
    bytes(&mut out, 2, value);
    out
}

pub(crate) fn msg_software_upgrade(authority: &str, plan: &[u8]) -> Vec<u8> {
    let mut value = Vec::new();
    bytes(&mut value, 1, authority.as_bytes());
    bytes(&mut value, 2, plan);
    any("/cosmos.upgrade.v1beta1.MsgSoftwareUpgrade", &value)
}

pub(crate) fn software_upgrade_proposal(title: &str, description: &str, plan: &[u8]) -> Vec<u8> {
    let mut value = Vec::new();
    bytes(&mut value, 1, title.as_bytes());
    bytes(&mut value, 2, description.as_bytes());
    bytes(&mut value, 3, plan);
    any("/cosmos.upgrade.v1beta1.SoftwareUpgradeProposal", &value)
}

pub(crate) fn exec_legacy_content(content: &[u8], authority: &str) -> Vec<u8> {
    let mut value = Vec::new();
    bytes(&mut value, 1, content);
    bytes(&mut value, 2, authority.as_bytes());
    any("/cosmos.gov.v1.MsgExecLegacyContent", &value)
}

/// The fields every proposal has beside its messages: tally, times, deposit (SDK order).
fn common(out: &mut Vec<u8>, status: u64, voting_end: i64) {
    varint(out, 3, status);
    let mut tally = Vec::new();
    for n in 1..=4 {
        bytes(&mut tally, n, b"0");
    }
    bytes(out, 4, &tally);
    bytes(out, 5, &timestamp(voting_end - 15 * 86_400, 153_021_000));
    bytes(out, 6, &timestamp(voting_end - 1_209_600, 153_021_000));
    let mut coin = Vec::new();
    bytes(&mut coin, 1, b"uatom");
    bytes(&mut coin, 2, b"250000000");
    bytes(out, 7, &coin);
    bytes(out, 8, &timestamp(voting_end - 1_209_600, 500_000_000));
    bytes(out, 9, &timestamp(voting_end, 500_000_000));
}

/// A gov v1 `Proposal` (SDK 0.47 and later: title, summary, proposer).
pub(crate) fn v1_proposal(id: u64, messages: &[Vec<u8>], status: u64, title: &str) -> Vec<u8> {
    let mut out = Vec::new();
    varint(&mut out, 1, id);
    for message in messages {
        bytes(&mut out, 2, message);
    }
    common(&mut out, status, 1_711_000_000);
    bytes(&mut out, 10, b"ipfs://CID");
    if !title.is_empty() {
        bytes(&mut out, 11, title.as_bytes());
    }
    bytes(&mut out, 12, b"Upgrade to v15");
    bytes(
        &mut out,
        13,
        b"cosmos1r5v5srda7xfth3hn2s26txvrcrntldjumt8mhl",
    );
    out
}

/// A gov v1beta1 `Proposal`.
pub(crate) fn v1beta1_proposal(id: u64, content: &[u8], status: u64) -> Vec<u8> {
    let mut out = Vec::new();
    varint(&mut out, 1, id);
    bytes(&mut out, 2, content);
    common(&mut out, status, 1_678_800_000);
    out
}

/// A `QueryProposalsResponse`: the proposals, and a `PageResponse` with `next_key`.
pub(crate) fn page(proposals: &[Vec<u8>], next_key: &[u8], total: u64) -> Vec<u8> {
    let mut out = Vec::new();
    for proposal in proposals {
        bytes(&mut out, 1, proposal);
    }
    let mut pagination = Vec::new();
    if !next_key.is_empty() {
        bytes(&mut pagination, 1, next_key);
    }
    if total > 0 {
        varint(&mut pagination, 2, total);
    }
    bytes(&mut out, 2, &pagination);
    out
}

pub(crate) const GOV_AUTHORITY: &str = "cosmos10d07y265gmmuvt4z0w9aw880jnsr700j6zn9kn";

/// Gaia v15's `info`, as its docs give it.
pub(crate) const GAIA_V15_INFO: &str = r#"{"binaries":{"darwin/amd64":"https://github.com/cosmos/gaia/releases/download/v15.0.0/gaiad-v15.0.0-darwin-amd64?checksum=sha256:7157f03fbad4f53a4c73cde4e75454f4a40a9b09619d3295232341fec99ad138","darwin/arm64":"https://github.com/cosmos/gaia/releases/download/v15.0.0/gaiad-v15.0.0-darwin-arm64?checksum=sha256:09e2420151dd22920304dafea47af4aa5ff4ab0ddbe056bb91797e33ff6df274","linux/amd64":"https://github.com/cosmos/gaia/releases/download/v15.0.0/gaiad-v15.0.0-linux-amd64?checksum=sha256:236b5b83a7674e0e63ba286739c4670d15d7d6b3dcd810031ff83bdec2c0c2af","linux/arm64":"https://github.com/cosmos/gaia/releases/download/v15.0.0/gaiad-v15.0.0-linux-arm64?checksum=sha256:b055fb7011e99d16a3ccae06443b0dcfd745b36480af6b3e569e88c94f3134d3"}}"#;
pub(crate) const OSMOSIS_V15_INFO: &str =
    "https://github.com/osmosis-labs/osmosis/releases/tag/v15.0.0";

/// The Cosmos Hub's v15 proposal, gov v1.
pub(crate) fn gaia_v15(id: u64) -> Vec<u8> {
    let upgrade = msg_software_upgrade(GOV_AUTHORITY, &plan("v15", 19_639_600, GAIA_V15_INFO));
    v1_proposal(id, &[upgrade], 2, "Upgrade v15")
}

/// Osmosis proposal 458's content.
pub(crate) fn osmosis_v15_content() -> Vec<u8> {
    software_upgrade_proposal(
        "Osmosis v15 Sodium Upgrade",
        "This is a proposal to do a software upgrade to the v15.0.0 software tag of the Osmosis codebase on block height 8732500",
        &plan("v15", 8_732_500, OSMOSIS_V15_INFO),
    )
}
