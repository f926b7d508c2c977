//! Test certificates made with the openssl CLI: certificate authorities and certificates
//! they sign, as PEM files in a directory.

use std::path::Path;
use std::process::Command;

/// Runs `openssl` with `args` in `dir`.
pub fn openssl(dir: &Path, args: &[&str]) {
    let output = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("running openssl");
    assert!(
        output.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

const EC: [&str; 5] = [
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:prime256v1",
    "-nodes",
];

/// A self-signed CA valid for two days: `<name>.key` and `<name>.pem` in `dir`.
pub fn make_ca(dir: &Path, name: &str, subject: &str) {
    let key = format!("{name}.key");
    let pem = format!("{name}.pem");
    let mut args = vec!["req", "-x509", "-days", "2", "-subj", subject];
    args.extend(EC);
    args.extend(["-keyout", &key, "-out", &pem]);
    openssl(dir, &args);
}

/// A certificate for `subject` signed by the CA `ca` (made by [`make_ca`]) with the
/// extensions `extensions` (openssl's extension file syntax): `<name>.key`, `<name>.crt`,
/// and both in `<name>.pem` (Kafka's PEM keystore), in `dir`.
pub fn issue(dir: &Path, ca: &str, name: &str, subject: &str, extensions: &str) {
    let ext = format!("{name}.ext");
    std::fs::write(dir.join(&ext), extensions).expect("writing the extension file");
    let key = format!("{name}.key");
    let csr = format!("{name}.csr");
    let crt = format!("{name}.crt");
    let mut req = vec!["req", "-subj", subject];
    req.extend(EC);
    req.extend(["-keyout", &key, "-out", &csr]);
    openssl(dir, &req);
    let (ca_pem, ca_key) = (format!("{ca}.pem"), format!("{ca}.key"));
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            &ca_pem,
            "-CAkey",
            &ca_key,
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            &ext,
            "-out",
            &crt,
        ],
    );
    let pem = [
        std::fs::read_to_string(dir.join(&key)).expect("key"),
        std::fs::read_to_string(dir.join(&crt)).expect("certificate"),
    ]
    .concat();
    std::fs::write(dir.join(format!("{name}.pem")), pem).expect("writing the keystore");
}

/// A certificate for [`authority`] to issue: its file name, subject and extensions, as
/// [`issue`] takes them.
#[derive(Debug, Clone, Copy)]
pub struct Issued<'a> {
    /// The file name stem: `<name>.key`, `<name>.crt`, `<name>.pem`.
    pub name: &'a str,
    /// The subject, in openssl's `/K=V/K=V` form.
    pub subject: &'a str,
    /// The extensions, in openssl's extension file syntax.
    pub extensions: &'a str,
}

/// A self-signed CA `<ca>` for `subject` (as [`make_ca`] makes it) and each of `issued`
/// signed by it (as [`issue`] makes them), in `dir`.
pub fn authority(dir: &Path, ca: &str, subject: &str, issued: &[Issued<'_>]) {
    make_ca(dir, ca, subject);
    for certificate in issued {
        issue(
            dir,
            ca,
            certificate.name,
            certificate.subject,
            certificate.extensions,
        );
    }
}
