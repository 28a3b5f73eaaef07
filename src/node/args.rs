//! The node's arguments: what wasmvisor reads from them (`--unsafe-skip-upgrades`) and adds
//! (`--halt-height`).

/// Adds `--halt-height H` to the node's arguments, before a `--` terminator if there is one.
pub fn insert_halt_height(args: &mut Vec<String>, height: u64) {
    let at = args.iter().position(|a| a == "--").unwrap_or(args.len());
    args.splice(at..at, ["--halt-height".to_string(), height.to_string()]);
}

/// Whether the operator's arguments tell the node to stop by itself (`--halt-height`,
/// `--halt-time`, with one or two dashes, before a `--` terminator): its exit 0 is then
/// expected.
pub fn has_halt(args: &[String]) -> bool {
    args.iter().take_while(|a| *a != "--").any(|a| {
        let flag = a.trim_start_matches('-');
        a.starts_with('-')
            && ["halt-height", "halt-time"]
                .iter()
                .any(|h| flag == *h || flag.starts_with(&format!("{h}=")))
    })
}

/// Heights given to the node with `--unsafe-skip-upgrades` (`--unsafe-skip-upgrades 10 20`,
/// `--unsafe-skip-upgrades=10,20`, repeated flags).
pub fn skip_heights(args: &[String]) -> Vec<u64> {
    let mut heights = Vec::new();
    let mut iter = args.iter().peekable();
    while let Some(arg) = iter.next() {
        let flag = arg.trim_start_matches('-');
        if !arg.starts_with('-') {
            continue;
        }
        if let Some(values) = flag.strip_prefix("unsafe-skip-upgrades=") {
            heights.extend(
                values
                    .split(',')
                    .filter_map(|v| v.trim().parse::<u64>().ok()),
            );
        } else if flag == "unsafe-skip-upgrades" {
            while let Some(next) = iter.peek() {
                if next.starts_with('-') {
                    break;
                }
                let parsed: Vec<u64> = next
                    .split(',')
                    .filter_map(|v| v.trim().parse().ok())
                    .collect();
                if parsed.is_empty() {
                    break;
                }
                heights.extend(parsed);
                iter.next();
            }
        }
    }
    heights
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(args: &[&str]) -> Vec<String> {
        args.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn skip_heights_in_every_form() {
        let args = strings(&[
            "start",
            "--unsafe-skip-upgrades",
            "10",
            "20",
            "--home",
            "/h",
            "--unsafe-skip-upgrades=30,40",
            "-unsafe-skip-upgrades",
            "50,60",
        ]);
        assert_eq!(skip_heights(&args), vec![10, 20, 30, 40, 50, 60]);
        assert!(skip_heights(&strings(&["start", "--home", "10"])).is_empty());
    }

    #[test]
    fn halt_height_goes_before_the_terminator() {
        let mut args = strings(&["start", "--home", "/h"]);
        insert_halt_height(&mut args, 9);
        assert_eq!(
            args,
            strings(&["start", "--home", "/h", "--halt-height", "9"])
        );
        let mut args = strings(&["start", "--", "extra"]);
        insert_halt_height(&mut args, 9);
        assert_eq!(
            args,
            strings(&["start", "--halt-height", "9", "--", "extra"])
        );
    }
}
