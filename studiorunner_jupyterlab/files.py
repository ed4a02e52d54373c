"""``Download job files``: the run's executed notebook (and its HTML page, and the input it
ran) from the bucket into the person's folder, where jupyter-scheduler puts job files
(``jobs/<notebook>-<job id>/``), written with the CLI's own ``download``."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from jupyter_scheduler.job_files_manager import JobFilesManager

from studiorunner_jupyterlab.scheduler import JobError, one_line


class RunFilesManager(JobFilesManager):
    async def copy_from_staging(self, job_id: str, redownload: bool | None = False) -> None:
        try:
            await asyncio.to_thread(self._copy, job_id, bool(redownload))
        except JobError:
            raise
        except Exception as exc:  # noqa: BLE001 - one line in the dialog
            raise JobError(one_line(exc)) from exc

    def _copy(self, job_id: str, redownload: bool) -> list[Path]:
        from studiorunner_cli.outputs import write_outputs

        scheduler = self.scheduler
        info = scheduler._describe(job_id)
        job = scheduler._job(info)
        names = scheduler.get_job_filenames(job)
        folder = Path(scheduler.get_local_output_path(job))
        notebook = folder / names["ipynb"]
        if notebook.exists() and not redownload and ("html" not in job.output_formats
                                                     or (folder / names["html"]).exists()):
            return []
        written = write_outputs(scheduler.runs, info, str(notebook), None)
        if not written:
            raise JobError(f"{info.run_id} has no output notebook ({info.status})")
        source = scheduler.input_uri(info.payload)
        if source:
            body = scheduler.runs.get_uri(source)
            if body is not None:
                target = folder / job.input_filename
                target.write_bytes(body)
                written.append(target)
        for path in written:
            os.chmod(path, 0o644)
        return written
