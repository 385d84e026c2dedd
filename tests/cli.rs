//! The CLI as a user drives it, with input it must refuse: each case ends with exit status 1
//! and a message that says what is wrong (never a panic, a signal, or a fit of garbage), and
//! before any model is loaded or any fitting time is spent.

use std::path::{Path, PathBuf};
use std::process::Command;

fn ganfit(args: &[&str]) -> (i32, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_ganfit"))
        .args(args)
        .output()
        .expect("the ganfit binary runs");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    // `code()` is None when a signal (an abort) ended the process.
    (output.status.code().unwrap_or(-1), stderr)
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ganfit-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn refused(args: &[&str], expected: &str) {
    let (code, stderr) = ganfit(args);
    assert_eq!(code, 1, "{args:?}: exit {code}, stderr:\n{stderr}");
    assert!(
        stderr.contains("error: ") && stderr.contains(expected),
        "{args:?}: expected {expected:?} in:\n{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{args:?} panicked:\n{stderr}");
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn photos_that_are_not_photos_are_refused_before_any_fitting() {
    let dir = scratch("photos");
    let out = dir.join("out");
    let text = dir.join("notes.jpg");
    std::fs::write(&text, "this is not a photo").unwrap();
    let empty = dir.join("empty.png");
    std::fs::write(&empty, b"").unwrap();
    // A device that never ends: read up to the size limit, not until memory runs out.
    refused(
        &["fit", "/dev/zero", "--out", path(&out)],
        "MB are accepted",
    );
    refused(
        &["fit", path(&text), "--out", path(&out)],
        "unrecognised format",
    );
    refused(&["fit", path(&empty), "--out", path(&out)], "empty");
    refused(
        &["fit", path(&dir.join("absent.jpg")), "--out", path(&out)],
        "absent.jpg",
    );
}

#[test]
fn bad_options_are_refused_naming_the_problem() {
    let dir = scratch("options");
    let out = dir.join("out");
    let photo = dir.join("photo.png");
    image::RgbImage::new(64, 64).save(&photo).unwrap();
    let options = |name: &str, text: &str| {
        let file = dir.join(name);
        std::fs::write(&file, text).unwrap();
        file
    };
    let typo = options("typo.json", r#"{"iteration": 99999}"#);
    refused(
        &[
            "fit",
            path(&photo),
            "--out",
            path(&out),
            "--options",
            path(&typo),
        ],
        "unknown field `iteration`",
    );
    let negative = options("negative.json", r#"{"weights": {"pixel": -1}}"#);
    refused(
        &[
            "fit",
            path(&photo),
            "--out",
            path(&out),
            "--options",
            path(&negative),
        ],
        "weights.pixel is -1",
    );
    let array = options("array.json", "[224, 300]");
    refused(
        &[
            "fit",
            path(&photo),
            "--out",
            path(&out),
            "--options",
            path(&array),
        ],
        "expected a JSON object",
    );
    refused(
        &[
            "fit",
            path(&photo),
            "--out",
            path(&out),
            "--options",
            "/dev/zero",
        ],
        "accepted",
    );
    refused(
        &[
            "fit",
            path(&photo),
            "--out",
            path(&out),
            "--iterations",
            "99999",
        ],
        "more than 20000",
    );
    refused(
        &[
            "fit",
            path(&photo),
            "--out",
            path(&out),
            "--resolution",
            "8",
        ],
        "resolution 8",
    );
}

#[test]
fn an_output_folder_that_cannot_be_written_is_refused_before_the_fit() {
    let dir = scratch("out");
    let photo = dir.join("photo.png");
    image::RgbImage::new(64, 64).save(&photo).unwrap();
    let file = dir.join("a-file");
    std::fs::write(&file, "").unwrap();
    refused(&["fit", path(&photo), "--out", path(&file)], "a-file");
    refused(
        &["fit", path(&photo), "--out", "/proc/ganfit-out"],
        "/proc/ganfit-out",
    );
}

#[test]
fn model_info_describes_odd_but_valid_files_and_refuses_corrupt_ones() {
    use ganfit::face_model::format::{ModelContents, Precision, encode};
    let dir = scratch("model");
    let mut contents = ModelContents::tiny();
    // Provenance text is the converter's, but a file could carry any UTF-8 there.
    contents.header.source.commit = "ü€😀 non-ASCII commit".into();
    let odd = dir.join("odd.gfm");
    std::fs::write(&odd, encode(&contents, Precision::F16).unwrap()).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_ganfit"))
        .args(["model", "info", path(&odd)])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("ü€😀"), "{stdout}");

    let zip = dir.join("zipped.gfm");
    std::fs::write(&zip, b"PK\x03\x04 not a model at all").unwrap();
    refused(&["model", "info", path(&zip)], "not a ganfit face model");
}
