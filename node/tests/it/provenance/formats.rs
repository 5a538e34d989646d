//! Lineage in every format, each parsed back: Mermaid and DOT for their
//! structure (every edge between declared nodes), JSON, and the SVG's
//! boxes, edges and legend.

use std::collections::BTreeSet;

use labmesh::provenance::{Format, LineageOptions};

use super::chain;
use crate::Lab;

#[test]
fn lineage_renders_in_every_format() {
    let lab = Lab::new();
    let (a, _) = chain(&lab);
    let l = lab
        .instance
        .lineage(&a[5].uid, &LineageOptions::default())
        .unwrap();

    let text = l.render(Format::Text);
    assert!(text.starts_with("a5.txt"), "{text}");
    assert!(text.contains("made by step5 v1 (command)"), "{text}");
    assert!(text.contains("└── a0.txt"), "{text}");

    let want: std::collections::BTreeSet<(String, String)> = l
        .edges
        .iter()
        .map(|e| (e.from.clone(), e.to.clone()))
        .collect();
    let uids: std::collections::BTreeSet<String> =
        l.nodes.iter().map(|n| n.uid().to_string()).collect();
    let (nodes, edges) = parse_mermaid(&l.render(Format::Mermaid));
    assert_eq!(nodes, uids, "every node declared once");
    assert_eq!(edges, want, "every edge, between declared nodes");
    let (nodes, edges) = parse_dot(&l.render(Format::Dot));
    assert_eq!(nodes, uids);
    assert_eq!(edges, want);

    let json: serde_json::Value = serde_json::from_str(&l.render(Format::Json)).unwrap();
    assert_eq!(json["nodes"].as_array().unwrap().len(), l.nodes.len());
    assert_eq!(json["edges"][0]["kind"], "output");

    let svg = l.render(Format::Svg);
    assert!(svg.starts_with("<svg ") && svg.trim_end().ends_with("</svg>"));
    assert_eq!(svg.matches("<g class=\"node artifact\"").count(), 7);
    assert_eq!(svg.matches("<g class=\"node run\"").count(), 5);
    assert_eq!(svg.matches("<path class=\"edge").count(), l.edges.len());
    assert!(
        svg.contains("data-crossings=\"0\""),
        "a chain draws without crossings"
    );
    assert!(svg.contains("<g class=\"legend\""));
    for word in ["this artifact", "completed", "read by", "wrote"] {
        assert!(
            svg.contains(&format!(">{word}</text>")),
            "legend lacks {word}"
        );
    }
    assert!(
        !svg.contains(">errored</text>"),
        "the legend shows only what is drawn"
    );
}

/// A Mermaid flowchart's node uids and edges (as uids), checked for
/// structure: one header, node lines with balanced brackets and quotes,
/// edges only between declared nodes.
fn parse_mermaid(text: &str) -> (BTreeSet<String>, BTreeSet<(String, String)>) {
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("flowchart LR"));
    let uid_of = |id: &str| -> String {
        let (kind, uid) = id.split_once('_').expect("a_/r_ id");
        assert!(kind == "a" || kind == "r", "{id}");
        assert!(uid.chars().all(|c| c.is_ascii_alphanumeric()), "{id}");
        uid.to_string()
    };
    let (mut nodes, mut edges) = (BTreeSet::new(), BTreeSet::new());
    let mut declared = std::collections::HashSet::new();
    for line in lines {
        let line = line.trim();
        if line.starts_with("classDef ") {
            continue;
        }
        if let Some((from, to)) = line.split_once(" --> ") {
            assert!(
                declared.contains(from) && declared.contains(to),
                "undeclared in {line}"
            );
            edges.insert((uid_of(from), uid_of(to)));
            continue;
        }
        let open = line
            .find(['[', '('])
            .unwrap_or_else(|| panic!("not a node: {line}"));
        let (id, rest) = line.split_at(open);
        let (shape, class) = rest.rsplit_once(":::").expect("a class");
        assert!(
            [
                "artifact",
                "root",
                "completed",
                "errored",
                "killed",
                "running"
            ]
            .contains(&class)
        );
        let balanced = matches!(
            (
                shape.starts_with("[\""),
                shape.ends_with("\"]"),
                shape.starts_with("([\""),
                shape.ends_with("\"])")
            ),
            (true, true, false, false) | (false, false, true, true)
        );
        assert!(balanced, "unbalanced shape in {line}");
        let inner = shape
            .trim_start_matches(['(', '['])
            .trim_end_matches([')', ']']);
        assert_eq!(
            inner.matches('"').count(),
            2,
            "quotes inside a label: {line}"
        );
        assert!(declared.insert(id.to_string()), "declared twice: {id}");
        nodes.insert(uid_of(id));
    }
    (nodes, edges)
}

/// A DOT digraph's node uids and edges, checked for structure: braces
/// close, statements end in `;`, attribute lists balance their brackets
/// and quotes, edges only between declared nodes.
fn parse_dot(text: &str) -> (BTreeSet<String>, BTreeSet<(String, String)>) {
    let body = text
        .trim()
        .strip_prefix("digraph lineage {")
        .and_then(|b| b.strip_suffix('}'))
        .expect("digraph lineage { … }");
    let (mut nodes, mut edges) = (BTreeSet::new(), BTreeSet::new());
    let unquote = |s: &str| -> String {
        let id = s
            .trim()
            .strip_prefix('"')
            .and_then(|s| s.strip_suffix('"'))
            .expect("quoted id");
        id.split_once('_').expect("a_/r_ id").1.to_string()
    };
    for stmt in body.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let stmt = stmt
            .strip_suffix(';')
            .unwrap_or_else(|| panic!("no `;`: {stmt}"));
        let (head, attrs) = match stmt.find(" [") {
            Some(i) => (&stmt[..i], Some(&stmt[i + 1..])),
            None => (stmt, None),
        };
        if let Some(a) = attrs {
            assert!(a.starts_with('[') && a.ends_with(']'), "attributes: {stmt}");
            let unescaped = a.replace("\\\\", "").replace("\\\"", "");
            assert_eq!(unescaped.matches('"').count() % 2, 0, "quotes: {stmt}");
        }
        if head == "node" || head == "edge" || head.starts_with("rankdir=") {
            continue;
        }
        match head.split_once(" -> ") {
            Some((from, to)) => {
                let (from, to) = (unquote(from), unquote(to));
                assert!(
                    nodes.contains(&from) && nodes.contains(&to),
                    "undeclared: {stmt}"
                );
                edges.insert((from, to));
            }
            None => assert!(nodes.insert(unquote(head)), "declared twice: {stmt}"),
        }
    }
    (nodes, edges)
}
