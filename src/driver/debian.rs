//! Images built from the host's Debian packages when no registry answers (the nginx and
//! HAProxy edges, the cluster's node): a rootfs made by mmdebstrap from the host's own apt
//! sources, imported through the engine. One build at a time per process.

use super::images::{BUILD_TIMEOUT, Progress};
use super::{Driver, DriverError};
use bollard::query_parameters::CreateImageOptionsBuilder;
use futures_util::TryStreamExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const MMDEBSTRAP_TIMEOUT: Duration = Duration::from_secs(600);

impl Driver {
    /// `image` present, else `upstream` pulled and tagged as `image`, else built from the
    /// Debian `packages` (comma-separated) with mmdebstrap and imported with `changes`.
    pub(crate) async fn ensure_debian_image(
        &self,
        image: &str,
        upstream: &str,
        packages: &str,
        changes: &[&str],
        progress: Progress<'_>,
    ) -> Result<(), DriverError> {
        // One build at a time in this process: concurrent callers (tests of one binary, the
        // edges of one cluster run) would each run mmdebstrap into the same tarball; the
        // second one waits and then finds the image.
        static BUILDING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
        let _building = BUILDING.lock().await;
        if self.image_exists(image).await? {
            return Ok(());
        }
        progress(&format!("pulling {upstream} for {image}"));
        let pull = match self.pull(upstream).await {
            Ok(()) => {
                let (repo, tag) = image.split_once(':').unwrap_or((image, "latest"));
                let opts = bollard::query_parameters::TagImageOptionsBuilder::default()
                    .repo(repo)
                    .tag(tag)
                    .build();
                return self
                    .call("tag image", self.docker.tag_image(upstream, Some(opts)))
                    .await;
            }
            Err(e) => e,
        };
        progress(&format!(
            "pull failed ({pull}); building {image} from Debian packages ({packages}) with mmdebstrap"
        ));
        let started = Instant::now();
        match self.debian_image(image, packages, changes).await {
            Ok(()) => {
                progress(&format!("built {image} in {:.1?}", started.elapsed()));
                Ok(())
            }
            Err(build) => Err(DriverError::EdgeImage {
                image: image.into(),
                pull,
                build,
            }),
        }
    }

    /// Builds a Debian rootfs holding `package` with mmdebstrap from the host's apt sources
    /// and imports it as `image`. Errors are plain text for [`DriverError::EdgeImage`].
    async fn debian_image(
        &self,
        image: &str,
        package: &str,
        changes: &[&str],
    ) -> Result<(), String> {
        let (suite, sources) = host_apt_sources()?;
        let tarball =
            std::env::temp_dir().join(format!("rollcheck-rootfs-{}.tar", std::process::id()));
        let mut cmd = tokio::process::Command::new("mmdebstrap");
        cmd.args(["--variant=apt", "--quiet"])
            .arg(format!("--include={package}"))
            // Docs and locales are most of the size and nothing here reads them.
            .args([
                "--dpkgopt=path-exclude=/usr/share/doc/*",
                "--dpkgopt=path-exclude=/usr/share/man/*",
                "--dpkgopt=path-exclude=/usr/share/locale/*",
            ])
            .arg(&suite)
            .arg(&tarball)
            .args(&sources)
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true);
        let out = match tokio::time::timeout(MMDEBSTRAP_TIMEOUT, cmd.output()).await {
            Ok(Ok(out)) => out,
            Ok(Err(e)) => return Err(format!("cannot run mmdebstrap: {e}")),
            Err(_) => {
                return Err(format!(
                    "mmdebstrap took longer than {MMDEBSTRAP_TIMEOUT:?}"
                ));
            }
        };
        if !out.status.success() {
            let _ = std::fs::remove_file(&tarball);
            let stderr = String::from_utf8_lossy(&out.stderr);
            let tail: Vec<&str> = stderr.lines().rev().take(3).collect();
            return Err(format!("mmdebstrap {}: {}", out.status, tail.join(" / ")));
        }
        let result = self.import_rootfs(image, &tarball, changes).await;
        let _ = std::fs::remove_file(&tarball);
        result
    }

    async fn import_rootfs(
        &self,
        image: &str,
        tarball: &Path,
        changes: &[&str],
    ) -> Result<(), String> {
        let file = tokio::fs::File::open(tarball)
            .await
            .map_err(|e| format!("{}: {e}", tarball.display()))?;
        let body = bollard::body_try_stream(tokio_util::io::ReaderStream::new(file));
        let (repo, tag) = image.split_once(':').unwrap_or((image, "latest"));
        let opts = CreateImageOptionsBuilder::default()
            .from_src("-")
            .repo(repo)
            .tag(tag)
            .changes(
                changes
                    .iter()
                    .copied()
                    .chain(["ENV LANG=C.UTF-8"])
                    .map(String::from)
                    .collect(),
            )
            .build();
        let import = self
            .docker
            .create_image(Some(opts), Some(body), None)
            .try_collect::<Vec<_>>();
        match tokio::time::timeout(BUILD_TIMEOUT, import).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(format!("import: {e}")),
            Err(_) => Err(format!("import took longer than {BUILD_TIMEOUT:?}")),
        }
    }
}

/// The suite and the sources files mmdebstrap should use: the host's own apt sources (so a
/// machine behind a mirror or proxy keeps using it), only entries for the host's suite.
fn host_apt_sources() -> Result<(String, Vec<PathBuf>), String> {
    let os_release = std::fs::read_to_string("/etc/os-release").unwrap_or_default();
    let suite = os_release
        .lines()
        .find_map(|l| l.strip_prefix("VERSION_CODENAME="))
        .map(|s| s.trim_matches('"').to_string())
        .filter(|s| !s.is_empty())
        .ok_or("cannot tell the host's Debian suite (no VERSION_CODENAME in /etc/os-release)")?;
    let mut files = vec![PathBuf::from("/etc/apt/sources.list")];
    if let Ok(dir) = std::fs::read_dir("/etc/apt/sources.list.d") {
        let mut more: Vec<PathBuf> = dir.flatten().map(|e| e.path()).collect();
        more.sort();
        files.extend(more);
    }
    let sources: Vec<PathBuf> = files
        .into_iter()
        .filter(|p| {
            let name = p.to_string_lossy();
            (name.ends_with(".list") || name.ends_with(".sources"))
                && std::fs::read_to_string(p).is_ok_and(|text| mentions_suite(&text, &suite))
        })
        .collect();
    if sources.is_empty() {
        return Err(format!("no apt sources for {suite} under /etc/apt"));
    }
    Ok((suite, sources))
}

/// Whether an apt sources file has an active entry for `suite` (or `suite-updates` etc.);
/// third-party repositories for other suites would only slow mmdebstrap down or break it.
fn mentions_suite(text: &str, suite: &str) -> bool {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#'))
        .flat_map(str::split_whitespace)
        .any(|w| w == suite || w.strip_prefix(suite).is_some_and(|r| r.starts_with('-')))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suites_match_whole_words() {
        let deb822 =
            "Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm bookworm-updates\n";
        assert!(mentions_suite(deb822, "bookworm"));
        assert!(mentions_suite(
            "deb http://x/debian-security bookworm-security main",
            "bookworm"
        ));
        assert!(!mentions_suite(
            "deb https://x/apt cloud-sdk-bookworm main",
            "bookworm"
        ));
        assert!(!mentions_suite("# deb http://x bookworm main", "bookworm"));
    }
}
