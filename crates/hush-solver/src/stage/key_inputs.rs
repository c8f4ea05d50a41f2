//! The build answers what a cache key needs ([`KeyInputs`]) from its context, its store and the
//! stages it built.

use hush_dockerfile::instructions::NetworkMode;
use hush_dockerfile::Location;
use hush_oci::Digest;
use hush_secrets::{Secret, Secrets};

use super::Ctx;
use crate::cache::KeyInputs;
use crate::{Error, Result};

impl KeyInputs for Ctx<'_> {
    fn source_date_epoch(&self) -> Option<i64> {
        self.opts.source_date_epoch
    }

    fn build_network(&self) -> NetworkMode {
        self.opts.network
    }

    fn secrets(&self) -> &Secrets {
        &self.opts.secrets
    }

    fn context_digest(
        &self,
        sources: &[String],
        dockerignore: bool,
        location: Location,
    ) -> Result<String> {
        let ignore = dockerignore.then_some(&self.ignore);
        self.digests
            .get(&self.opts.context, sources, ignore, location)
    }

    fn stage_key(&self, index: usize, location: Location) -> Result<Digest> {
        self.stages
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(index)
            .and_then(|b| b.as_ref().map(|b| b.key.clone()))
            .ok_or(Error::StageNotBuilt {
                stage: index,
                location,
            })
    }

    fn image_key(&self, name: &str, location: Location) -> Result<Digest> {
        // The image the plan resolved (its key is its config digest): the one the step reads,
        // without a second look-up in the store's index per step.
        self.images
            .get(name)
            .map(|b| b.key.clone())
            .ok_or_else(|| Error::missing_image(name, location, &[]))
    }

    fn secret_fingerprint(&self, id: &str, secret: &Secret) -> Result<String> {
        crate::cache::secret_fingerprint(self.store, self.opts.cache_key.as_ref(), id, secret)
    }

    fn remote_source(
        &self,
        source: &str,
        checksum: Option<&str>,
        keep_git_dir: Option<bool>,
        location: Location,
    ) -> Result<String> {
        self.remotes.key(source, checksum, keep_git_dir, location)
    }
}
