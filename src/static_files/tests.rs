use super::*;

fn listing_of(directory: &std::path::Path) -> String {
    let output =
        std::process::Command::new("sh").arg("-c").arg(listing_script(directory.to_str().unwrap())).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn what_the_host_lists_is_read_back_as_the_files_it_has() {
    let directory = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(directory.path().join("admin/css")).unwrap();
    std::fs::create_dir_all(directory.path().join("empty")).unwrap();
    std::fs::write(directory.path().join("admin/css/base.css"), "body {}\n").unwrap();
    std::fs::write(directory.path().join("a name with spaces, ünïcode.txt"), b"\x00\xff").unwrap();
    std::fs::write(directory.path().join("nothing"), "").unwrap();
    let files = parse_listing("app-01", &listing_of(directory.path())).unwrap();
    let names: Vec<&str> = files.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(names, ["a name with spaces, ünïcode.txt", "admin/css/base.css", "nothing"]);
    assert_eq!(&*files[0].1, b"\x00\xff");
    assert_eq!(&*files[1].1, b"body {}\n");
    assert!(files[2].1.is_empty());
}

#[test]
fn a_name_with_a_control_character_is_refused() {
    let directory = tempfile::tempdir().unwrap();
    std::fs::write(directory.path().join("two\nlines"), "").unwrap();
    let error = parse_listing("app-01", &listing_of(directory.path())).unwrap_err();
    assert!(error.to_string().contains("not a plain relative path"), "{error}");
}

#[test]
fn a_link_left_by_the_build_is_refused() {
    let directory = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink("/etc/shadow", directory.path().join("shadow")).unwrap();
    let error = parse_listing("app-01", &listing_of(directory.path())).unwrap_err();
    assert!(matches!(&error, StaticError::NotAFile { path } if path == "shadow"), "{error}");
}

#[test]
fn a_hostile_listing_names_no_file_outside_the_release() {
    let encode = |text: &str| base64::engine::general_purpose::STANDARD.encode(text);
    for path in ["../../etc/cron.d/x", "/etc/passwd", "a/../../b", "a//b", ".", "a\u{1b}[2J"] {
        let listing = format!("F {} {}\nEND\n", encode(path), encode("x"));
        let error = parse_listing("app-01", &listing).unwrap_err();
        assert!(error.to_string().contains("not a plain relative path"), "{path}: {error}");
    }
    for listing in ["F !!! eA==\nEND\n", "X\nEND\n", "F eA== eA==\n", "END\nF eA== eA==\n"] {
        assert!(parse_listing("app-01", listing).is_err(), "{listing:?}");
    }
}

#[test]
fn publishing_renames_a_whole_directory_into_place_and_prunes_only_release_ids() {
    let files: Vec<(String, Arc<[u8]>)> = vec![("css/site.css".into(), Arc::from(&b"x"[..]))];
    let prune = ["0123456789ab".to_string(), "../../etc".to_string()];
    let script = publish_script("/var/www/infra", "aaaaaaaaaaaa", &files, &prune, true);
    assert!(script.contains("mv -T '/var/www/infra/.aaaaaaaaaaaa.partial' '/var/www/infra/aaaaaaaaaaaa'"), "{script}");
    assert!(script.contains("rm -rf '/var/www/infra/0123456789ab'"), "{script}");
    assert!(!script.contains("etc"), "{script}");
}

#[test]
fn published_files_land_where_the_listing_said_and_nowhere_else() {
    let source = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(source.path().join("admin/js")).unwrap();
    std::fs::write(source.path().join("admin/js/app.js"), "alert(1)\n").unwrap();
    let files = parse_listing("app-01", &listing_of(source.path())).unwrap();
    let web = tempfile::tempdir().unwrap();
    let root = web.path().join("static");
    let script = publish_script(root.to_str().unwrap(), "aaaaaaaaaaaa", &files, &[], true);
    let status = std::process::Command::new("sh").arg("-c").arg(&script).status().unwrap();
    assert!(status.success());
    assert_eq!(std::fs::read_to_string(root.join("aaaaaaaaaaaa/admin/js/app.js")).unwrap(), "alert(1)\n");
    assert_eq!(std::fs::read_dir(&root).unwrap().count(), 1, "no partial directory is left");
}
