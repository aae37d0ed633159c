"""Images into the cluster without a registry: `[kubernetes] image_import`.

An image on the local Docker engine (every image `paasctl build` and `git push`
make is) is exported with `docker save` (through the engine facade) and imported
into the node's containerd, in its CRI namespace, by:

- `ctr`: `ctr --address SOCKET -n k8s.io images import TAR` (any containerd node
  this machine can reach by socket: the test cluster, a kubeadm node);
- `k3s`: `k3s ctr images import TAR` (k3s' embedded containerd);
- `kind`: `kind load docker-image REF --name CLUSTER` (kind copies it into its
  node containers itself).

The pod then names the image by its ID (`sha256:…`, the config digest, the same
in Docker and containerd): a revision runs exactly the image it was created with,
as Knative pins a revision's image to a digest, and a later build under the same
tag changes nothing that runs.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import trio

from ...engine import Engine, EngineError
from ...errors import PaasdError
from .settings import KubernetesSettings

log = logging.getLogger("paasd.runtime.kubernetes")

OUTPUT_KEPT = 600  # characters of a failed command's output quoted in its error


class ImageImportFailed(PaasdError):
    """The image could not be brought into the cluster; the message says why."""


@dataclass(frozen=True)
class Pinned:
    image: str  # what the pod names
    pull_policy: str | None  # IfNotPresent for an image paasd imported; else the spec's
    image_id: str = ""  # the ID it was pinned to, when paasd imported it


class ImageImporter:
    def __init__(self, settings: KubernetesSettings, engine: Engine, state_dir: Path) -> None:
        self.settings = settings
        self.engine = engine
        self.state_dir = state_dir
        self.imported: set[str] = set()  # image IDs imported by this daemon (in this run)
        self._lock = trio.Lock()  # one import at a time: they are big and disk-bound

    def command(self, ref: str, tar: Path) -> list[str]:
        s = self.settings
        if s.image_import == "ctr":
            return [s.ctr_command, "--address", s.containerd_socket, "-n",
                    s.containerd_namespace, "images", "import", str(tar)]
        if s.image_import == "k3s":
            return [s.k3s_command, "ctr", "images", "import", str(tar)]
        return [s.kind_command, "load", "docker-image", ref, "--name", s.kind_cluster]

    async def pin(self, image: str, pull_policy: str | None) -> Pinned:
        """The image a revision's pods run: imported and pinned by ID when it is on the
        local engine and `image_import` says how; otherwise as written."""
        if self.settings.image_import == "none":
            return Pinned(image, pull_policy)
        try:
            image_id = await self.engine.image_id(image)
        except EngineError as exc:
            raise ImageImportFailed(f"cannot import {image} into the cluster: {exc}") from None
        if image_id is None:
            log.info("image %s is not on the local Docker engine: the cluster gets it as "
                     "written", image)
            return Pinned(image, pull_policy)
        async with self._lock:
            if image_id not in self.imported:
                await self._import(image, image_id)
                self.imported.add(image_id)
        if pull_policy not in (None, "IfNotPresent"):
            log.warning("image %s: imagePullPolicy %s ignored, the image was imported by "
                        "paasd (IfNotPresent)", image, pull_policy)
        from .objects import pinned_image

        return Pinned(pinned_image(image_id), "IfNotPresent", image_id)

    async def _import(self, image: str, image_id: str) -> None:
        s = self.settings
        log.info("importing %s (%s) into the cluster with %s", image, image_id[:19],
                 s.image_import)
        tmp = Path(await trio.to_thread.run_sync(
            lambda: tempfile.mkdtemp(dir=self.state_dir, prefix="image-")))
        tar = tmp / "image.tar"
        try:
            with trio.fail_after(s.import_timeout):
                if s.image_import != "kind":  # kind reads the engine itself
                    await self.engine.save(image, tar)
                cmd = self.command(image, tar)
                result = await trio.run_process(cmd, capture_stdout=True,
                                                capture_stderr=True, check=False)
        except EngineError as exc:
            raise ImageImportFailed(f"cannot export {image} from the Docker engine: "
                                    f"{exc}") from None
        except FileNotFoundError:
            key = f"{s.image_import}_command"
            raise ImageImportFailed(
                f"cannot import {image}: {self.command(image, tar)[0]} is not installed "
                f"(set [kubernetes] {key} to its path, or image_import)") from None
        except trio.TooSlowError:
            raise ImageImportFailed(
                f"importing {image} took over {s.import_timeout:g}s "
                "([kubernetes] import_timeout)") from None
        finally:
            with trio.move_on_after(30, shield=True):  # a big tar: off the event loop
                await trio.to_thread.run_sync(shutil.rmtree, tmp, True)
        if result.returncode != 0:
            output = (result.stderr or result.stdout).decode(errors="replace").strip()
            raise ImageImportFailed(
                f"importing {image} failed: `{' '.join(cmd)}` exited with "
                f"{result.returncode}: {output[-OUTPUT_KEPT:]}")


__all__ = ["ImageImportFailed", "ImageImporter", "Pinned"]
