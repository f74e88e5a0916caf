//! Images for a lab with no registry: the test service is rollcheck's own static executable in
//! a `FROM scratch` image built through the engine's build API; the nginx edge is pulled when a
//! registry answers and otherwise built from Debian packages ([`super::debian`]).

use super::{Driver, DriverError, LABEL_MANAGED, call_within};
use crate::scenario::{Action, EdgeKind, Plan};
use bollard::body_full;
use bollard::query_parameters::{BuildImageOptionsBuilder, CreateImageOptionsBuilder};
use futures_util::TryStreamExt;
use std::hash::Hasher;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Repository of the test-service images rollcheck builds itself.
pub const TESTSVC_REPO: &str = "rollcheck/testsvc";
/// The nginx edge image: has `/bin/sh` and `nginx` on PATH (the edge's entrypoint needs both).
/// Tag 2: with the stream module, for `edge.protocol = "tcp"`.
pub const NGINX_IMAGE: &str = "rollcheck/nginx:2";
/// Tried first when a registry is reachable.
const NGINX_UPSTREAM: &str = "docker.io/library/nginx:stable";
/// The outer edge of a cluster lab: has `/bin/sh` and `haproxy` on PATH.
pub const HAPROXY_IMAGE: &str = "rollcheck/haproxy:1";
/// A cluster node: runs its own dockerd (`docker:dind` where a registry answers).
pub const NODE_IMAGE: &str = "rollcheck/node:1";
/// Image label holding a digest of the executable inside, so a rebuilt rollcheck rebuilds it.
const LABEL_EXE_DIGEST: &str = "rollcheck.exe-digest";

const PULL_TIMEOUT: Duration = Duration::from_secs(20);
/// How long an image build or import may take.
pub(super) const BUILD_TIMEOUT: Duration = Duration::from_secs(300);

/// Progress lines for the user ("building rollcheck/testsvc:2 ...").
pub type Progress<'a> = &'a (dyn Fn(&str) + Send + Sync);

impl Driver {
    /// Makes every image the plan needs present locally: `rollcheck/testsvc:*` are built from
    /// `exe` (default: the running executable), the edge image is pulled or built, any other
    /// image must exist or be pullable.
    pub async fn ensure_images(
        &self,
        plan: &Plan,
        exe: Option<&Path>,
        progress: Progress<'_>,
    ) -> Result<(), DriverError> {
        for image in plan_images(plan) {
            if image == NGINX_IMAGE {
                // A stack's proxy may be rollcheck's nginx image, built here like the edge's.
                self.ensure_nginx(progress).await?;
            } else if let Some(version) = testsvc_version(image) {
                self.ensure_testsvc(version, exe, progress).await?;
            } else {
                match self.ensure_foreign(image, progress).await {
                    // The user's swarm pulls with its own registry credentials.
                    Err(e @ DriverError::ImageMissing { .. }) if plan.on_existing_swarm() => {
                        progress(&format!(
                            "warning: {}; going on: the swarm's nodes pull it themselves",
                            for_service(e, plan, image)
                        ));
                    }
                    other => other.map_err(|e| for_service(e, plan, image))?,
                }
            }
        }
        let cluster = plan.cluster().is_some();
        let outer = plan
            .stack()
            .and_then(|s| s.outer.as_ref())
            .map(|o| o.edge.kind);
        match plan.lab().map(|l| l.edge.kind).or(outer) {
            Some(EdgeKind::Nginx) => self.ensure_nginx(progress).await.map(drop),
            // A cluster's nodes run the nginx edge; HAProxy fronts them from the host.
            Some(EdgeKind::Haproxy) if cluster => {
                self.ensure_nginx(progress).await?;
                self.ensure_debian_image(
                    HAPROXY_IMAGE,
                    "docker.io/library/haproxy:lts",
                    "haproxy",
                    &[],
                    progress,
                )
                .await
            }
            Some(EdgeKind::Haproxy) => Err(DriverError::Unsupported {
                what: "edge.kind = \"haproxy\" outside a swarm-cluster lab (use \"nginx\")".into(),
            }),
            _ if cluster => self.ensure_nginx(progress).await.map(drop),
            _ => Ok(()),
        }
    }

    /// What `rollcheck lab images` prepares: test service v1 and v2 and the nginx edge.
    pub async fn ensure_lab_images(
        &self,
        exe: Option<&Path>,
        progress: Progress<'_>,
    ) -> Result<(), DriverError> {
        self.ensure_testsvc("1", exe, progress).await?;
        self.ensure_testsvc("2", exe, progress).await?;
        self.ensure_nginx(progress).await.map(drop)
    }

    /// Builds `rollcheck/testsvc:<version>` unless an image built from the same executable
    /// exists. Returns the image reference.
    pub async fn ensure_testsvc(
        &self,
        version: &str,
        exe: Option<&Path>,
        progress: Progress<'_>,
    ) -> Result<String, DriverError> {
        let exe = match exe {
            Some(p) => p.to_path_buf(),
            None => std::env::current_exe().map_err(|source| DriverError::Io {
                path: PathBuf::from("/proc/self/exe"),
                source,
            })?,
        };
        let image = format!("{TESTSVC_REPO}:{version}");
        let bytes = std::fs::read(&exe).map_err(|source| DriverError::Io {
            path: exe.clone(),
            source,
        })?;
        check_static(&bytes).map_err(|why| DriverError::NotStatic {
            path: exe.clone(),
            why,
        })?;
        let digest = digest(&bytes);
        if let Some(existing) = self.image_label(&image, LABEL_EXE_DIGEST).await?
            && existing == digest
        {
            return Ok(image);
        }
        progress(&format!(
            "building {image} from {} ({:.1} MB)",
            exe.display(),
            bytes.len() as f64 / 1e6
        ));
        let started = Instant::now();
        let context =
            build_context(version, &digest, &bytes).map_err(|source| DriverError::Io {
                path: exe.clone(),
                source,
            })?;
        let options = BuildImageOptionsBuilder::default()
            .dockerfile("Dockerfile")
            .t(&image)
            .rm(true)
            .forcerm(true)
            .build();
        let build = self
            .docker
            .build_image(options, None, Some(body_full(context.into())))
            .try_collect::<Vec<_>>();
        match tokio::time::timeout(BUILD_TIMEOUT, build).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                return Err(DriverError::Build {
                    image,
                    reason: e.to_string(),
                });
            }
            Err(_) => {
                return Err(DriverError::Build {
                    image,
                    reason: format!("no result within {BUILD_TIMEOUT:?}"),
                });
            }
        }
        progress(&format!("built {image} in {:.1?}", started.elapsed()));
        Ok(image)
    }

    /// The nginx edge image: present, else pulled and tagged, else built with mmdebstrap.
    /// Returns the reference it made present, so a caller never names a tag of its own.
    pub async fn ensure_nginx(&self, progress: Progress<'_>) -> Result<&'static str, DriverError> {
        self.ensure_debian_image(
            NGINX_IMAGE,
            NGINX_UPSTREAM,
            "nginx-light,libnginx-mod-stream",
            &[r#"CMD ["nginx", "-g", "daemon off;"]"#, "EXPOSE 80"],
            progress,
        )
        .await?;
        Ok(NGINX_IMAGE)
    }

    /// An image rollcheck cannot build: must exist, else is pulled.
    async fn ensure_foreign(&self, image: &str, progress: Progress<'_>) -> Result<(), DriverError> {
        if self.image_exists(image).await? {
            return Ok(());
        }
        progress(&format!("pulling {image}"));
        self.pull(image)
            .await
            .map_err(|reason| DriverError::ImageMissing {
                image: image.into(),
                reason,
            })
    }

    pub(crate) async fn image_exists(&self, image: &str) -> Result<bool, DriverError> {
        match self
            .call("inspect image", self.docker.inspect_image(image))
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if super::is_not_found(&e) => Ok(false),
            Err(e) => Err(e),
        }
    }

    async fn image_label(&self, image: &str, label: &str) -> Result<Option<String>, DriverError> {
        match self
            .call("inspect image", self.docker.inspect_image(image))
            .await
        {
            Ok(i) => Ok(i
                .config
                .and_then(|c| c.labels)
                .and_then(|mut l| l.remove(label))),
            Err(e) if super::is_not_found(&e) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Pulls with a short limit: on machines without a registry this should fail fast.
    pub(super) async fn pull(&self, image: &str) -> Result<(), String> {
        let opts = CreateImageOptionsBuilder::default()
            .from_image(image)
            .build();
        let pull = self
            .docker
            .create_image(Some(opts), None, None)
            .try_collect::<Vec<_>>();
        match tokio::time::timeout(PULL_TIMEOUT, pull).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!("no answer within {PULL_TIMEOUT:?}")),
        }
    }

    /// `lab down --images`: removes every image tagged `rollcheck/*` (test service, edges,
    /// node) and nothing else, so the next run builds them from scratch like a new machine.
    /// Returns the tags removed.
    pub async fn remove_managed_images(&self) -> Result<Vec<String>, DriverError> {
        let mut removed = Vec::new();
        for (tag, _) in self.managed_images().await? {
            match self
                .call(
                    format!("remove image {tag}"),
                    self.docker.remove_image(
                        &tag,
                        None::<bollard::query_parameters::RemoveImageOptions>,
                        None,
                    ),
                )
                .await
            {
                Ok(_) => removed.push(tag),
                Err(e) if super::is_not_found(&e) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(removed)
    }

    /// Rows for `lab status`: the images rollcheck builds.
    pub(crate) async fn managed_images(&self) -> Result<Vec<(String, String)>, DriverError> {
        let mut rows = Vec::new();
        let list = call_within(
            "list images",
            super::CALL_TIMEOUT,
            self.docker
                .list_images(None::<bollard::query_parameters::ListImagesOptions>),
        )
        .await?;
        for image in list {
            for tag in image.repo_tags {
                if tag.starts_with("rollcheck/") {
                    rows.push((tag, format!("{:.0} MB", image.size as f64 / 1e6)));
                }
            }
        }
        rows.sort();
        Ok(rows)
    }
}

/// A missing image of a stack names the services that run it.
fn for_service(e: DriverError, plan: &Plan, image: &str) -> DriverError {
    let DriverError::ImageMissing {
        image: name,
        reason,
    } = e
    else {
        return e;
    };
    let users: Vec<String> = plan
        .stack()
        .into_iter()
        .flat_map(|s| {
            s.compose
                .services
                .iter()
                .filter(|(_, c)| c.image == image)
                .map(|(n, _)| format!("{}_{n}", s.name))
        })
        .collect();
    let image = match users.as_slice() {
        [] => name,
        _ => format!("{name} (of service {})", users.join(", ")),
    };
    DriverError::ImageMissing { image, reason }
}

/// Every image the plan's service, stack and steps run, once each in first-use order: the
/// service's, the stack's and those of the files a `stack_deploy` step deploys, and those an
/// `update_image` step sets.
pub(crate) fn plan_images(plan: &Plan) -> Vec<&str> {
    let mut images: Vec<&str> = Vec::new();
    if let Some(lab) = plan.lab() {
        images.push(lab.service.image.as_str());
    }
    let composes =
        plan.stack()
            .map(|s| &s.compose)
            .into_iter()
            .chain(plan.steps.iter().filter_map(|s| match &s.action {
                Action::StackDeploy { compose, .. } => Some(compose),
                _ => None,
            }));
    images.extend(
        composes
            .flat_map(|c| c.services.values())
            .map(|s| s.image.as_str()),
    );
    images.extend(plan.steps.iter().filter_map(|s| match &s.action {
        Action::UpdateImage { image, .. } => Some(image.as_str()),
        _ => None,
    }));
    if plan.load.agents() {
        images.push(crate::driver::cluster::agents::AGENT_IMAGE);
    }
    if let Some(d) = plan.docker() {
        images.extend(
            d.all_containers(&plan.steps)
                .iter()
                .map(|c| c.image.as_str()),
        );
        // The docker lab's edge.
        images.push(NGINX_IMAGE);
    }
    let mut seen = std::collections::HashSet::new();
    images.retain(|i| seen.insert(*i));
    images
}

/// `Some(version)` when `image` is one rollcheck builds itself (`rollcheck/testsvc:<version>`).
pub fn testsvc_version(image: &str) -> Option<&str> {
    let image = image.strip_prefix("docker.io/").unwrap_or(image);
    match image.strip_prefix(TESTSVC_REPO)? {
        "" => Some("latest"),
        rest => rest.strip_prefix(':'),
    }
}

/// A colour per version, so a report (and the service's own page) tells versions apart.
pub fn color_for(version: &str) -> &'static str {
    const COLORS: [&str; 6] = ["blue", "green", "orange", "purple", "red", "teal"];
    let index = match version.parse::<usize>() {
        Ok(n) => n.wrapping_sub(1),
        Err(_) => version.bytes().map(usize::from).sum(),
    };
    COLORS[index % COLORS.len()]
}

/// A scratch image can only run an executable that needs no dynamic loader: an ELF file
/// without a `PT_INTERP` program header.
pub fn check_static(bytes: &[u8]) -> Result<(), String> {
    const PT_INTERP: u32 = 3;
    if bytes.len() < 64 || &bytes[..4] != b"\x7fELF" {
        return Err("not an ELF file".into());
    }
    if bytes[4] != 2 || bytes[5] != 1 {
        return Err("not a 64-bit little-endian ELF file".into());
    }
    let u16_at = |o: usize| u16::from_le_bytes([bytes[o], bytes[o + 1]]) as usize;
    let phoff = u64::from_le_bytes(bytes[0x20..0x28].try_into().unwrap_or([0; 8])) as usize;
    let (phentsize, phnum) = (u16_at(0x36), u16_at(0x38));
    for i in 0..phnum {
        let at = phoff + i * phentsize;
        let Some(header) = bytes.get(at..at + 4) else {
            return Err("truncated program headers".into());
        };
        if u32::from_le_bytes(header.try_into().unwrap_or([0; 4])) == PT_INTERP {
            return Err("it has a PT_INTERP header, so it needs a dynamic loader".into());
        }
    }
    Ok(())
}

fn digest(bytes: &[u8]) -> String {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    h.write(bytes);
    format!("{:016x}-{}", h.finish(), bytes.len())
}

/// The build context: a Dockerfile and the executable.
fn build_context(version: &str, digest: &str, exe: &[u8]) -> std::io::Result<Vec<u8>> {
    let dockerfile = format!(
        "FROM scratch\n\
         COPY rollcheck /rollcheck\n\
         ENV VERSION={version} COLOR={color}\n\
         LABEL {LABEL_MANAGED}=true rollcheck.testsvc.version={version} {LABEL_EXE_DIGEST}={digest}\n\
         EXPOSE 8080\n\
         ENTRYPOINT [\"/rollcheck\", \"serve\"]\n",
        color = color_for(version),
    );
    let mut tar = tar::Builder::new(Vec::new());
    for (name, data, mode) in [
        ("Dockerfile", dockerfile.as_bytes(), 0o644),
        ("rollcheck", exe, 0o755),
    ] {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(mode);
        header.set_cksum();
        tar.append_data(&mut header, name, data)?;
    }
    tar.into_inner()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn testsvc_versions() {
        assert_eq!(testsvc_version("rollcheck/testsvc:2"), Some("2"));
        assert_eq!(testsvc_version("docker.io/rollcheck/testsvc:1"), Some("1"));
        assert_eq!(testsvc_version("rollcheck/testsvc"), Some("latest"));
        assert_eq!(testsvc_version("rollcheck/testsvcx:1"), None);
        assert_eq!(testsvc_version("nginx:1"), None);
    }

    #[test]
    fn versions_get_different_colours() {
        assert_ne!(color_for("1"), color_for("2"));
    }

    #[test]
    fn elf_checks() {
        assert!(check_static(b"#!/bin/sh\n").is_err());
        let sh = std::fs::read("/bin/sh").expect("/bin/sh");
        assert!(check_static(&sh).unwrap_err().contains("PT_INTERP"));
    }

    /// The images rollcheck builds under fixed tags are named only through their constants.
    /// A literal elsewhere goes stale when a tag changes and still passes on any machine that
    /// kept the old image: a test asked for `rollcheck/nginx:1` for weeks after the edge moved
    /// to tag 2, and failed only on a new machine.
    #[test]
    fn built_images_are_named_only_through_their_constants() {
        fn walk(dir: &Path, found: &mut Vec<String>) {
            for entry in std::fs::read_dir(dir).unwrap().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    walk(&path, found);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    let text = std::fs::read_to_string(&path).unwrap();
                    for (n, line) in text.lines().enumerate() {
                        let literal = ["nginx", "haproxy", "node"]
                            .iter()
                            .any(|repo| line.contains(&format!("\"rollcheck/{repo}:")));
                        if literal && !line.trim_start().starts_with("pub const") {
                            found.push(format!("{}:{}: {}", path.display(), n + 1, line.trim()));
                        }
                    }
                }
            }
        }
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut found = Vec::new();
        for dir in ["src", "tests", "benches"] {
            walk(&root.join(dir), &mut found);
        }
        assert!(
            found.is_empty(),
            "name these images by their constants:\n{}",
            found.join("\n")
        );
    }
}
