//! Lineage pictures of shapes that used to draw badly: a big fan-in, and
//! an input read at the start of a pipeline and again at its end.

use super::{lab, well_formed};

/// The width and height an SVG declares.
fn svg_size(svg: &str) -> (f64, f64) {
    let attr = |name: &str| -> f64 {
        let at = svg.find(&format!(" {name}=\"")).expect(name) + name.len() + 3;
        svg[at..at + svg[at..].find('"').unwrap()].parse().unwrap()
    };
    (attr("width"), attr("height"))
}

#[test]
fn a_big_fan_in_collapses_into_a_box_of_the_rest() {
    let sb = lab();
    let mut reads = String::new();
    for i in 1..=25 {
        sb.write(&format!("lab/raw/p{i:02}.csv"), format!("plate {i}\n"));
        reads.push_str(&format!("labmesh cache raw/p{i:02}.csv > /dev/null\n"));
    }
    let files: Vec<String> = (1..=25).map(|i| format!("raw/p{i:02}.csv")).collect();
    let mut save = vec!["save"];
    save.extend(files.iter().map(String::as_str));
    sb.ok("lab", &save);
    reads.push_str("echo merged > merged.csv\nlabmesh save merged.csv > /dev/null\n");
    sb.write("lab/merge.sh", &reads);
    sb.ok("lab", &["run", "--", "sh", "merge.sh"]);

    sb.ok(
        "lab",
        &["lineage", "merged.csv", "--format", "svg", "-o", "fan.svg"],
    );
    let svg = std::fs::read_to_string(sb.path().join("lab/fan.svg")).unwrap();
    well_formed(&svg);
    // 7 inputs drawn, the other 18 in one box whose tooltip lists them.
    assert_eq!(svg.matches("<g class=\"node artifact\"").count(), 7 + 1);
    assert_eq!(svg.matches("<g class=\"node more\"").count(), 1);
    assert!(svg.contains(">+18 more inputs</text>"), "{svg}");
    assert!(
        svg.contains("raw/p25.csv"),
        "the tooltip names the hidden ones"
    );
    let (w, h) = svg_size(&svg);
    assert!(w < 900.0 && h < 800.0, "{w} x {h}");
    assert!(
        svg.contains("several, collapsed"),
        "the legend explains the box"
    );
    // The text form still lists every input.
    let text = sb.ok("lab", &["lineage", "merged.csv"]);
    assert_eq!(text.matches("raw/p").count(), 25);
}

#[test]
fn an_input_read_early_and_late_is_routed_around_the_boxes_between() {
    let sb = lab();
    sb.write("lab/x.txt", "x\n");
    sb.ok("lab", &["save", "x.txt"]);
    // x.txt -> a -> b -> c, and the report reads c and x.txt again.
    for (key, reads, writes) in [
        ("step-a", "x.txt", "a.txt"),
        ("step-b", "a.txt", "b.txt"),
        ("step-c", "b.txt", "c.txt"),
        ("report", "c.txt x.txt", "report.txt"),
    ] {
        let mut script = String::new();
        for r in reads.split(' ') {
            script.push_str(&format!("labmesh cache {r} > /dev/null && "));
        }
        script.push_str(&format!(
            "echo {key} > {writes} && labmesh save {writes} > /dev/null"
        ));
        sb.ok("lab", &["run", "--key", key, "--", "sh", "-c", &script]);
    }
    sb.ok(
        "lab",
        &["lineage", "report.txt", "--format", "svg", "-o", "long.svg"],
    );
    let svg = std::fs::read_to_string(sb.path().join("lab/long.svg")).unwrap();
    well_formed(&svg);
    assert!(svg.contains("data-crossings=\"0\""), "{svg}");
    // The long edge passes the middle layers as straight segments ("L")
    // through the gaps, one per layer it crosses.
    let long = svg
        .lines()
        .filter(|l| l.starts_with("<path class=\"edge input\""))
        .max_by_key(|l| l.matches(" L").count())
        .unwrap();
    assert!(long.matches(" L").count() >= 4, "{long}");
}
