"""Never a worse image on its own; a person's ``force`` run config takes the best one now.

Through both entry points (the assets' run config and the batch job's config).
"""

from __future__ import annotations

import yaml

from podpod_scraping_tests.defs.conftest import Pipeline, make_jpeg


def _add_backup_source(pipeline: Pipeline) -> None:
    """A second, lower-priority site (``/backup/<id>``) after the fixture site."""
    config = yaml.safe_load(pipeline.config_path.read_text(encoding="utf-8"))
    config["sources"].append(
        {
            "name": "backup-site",
            "page_url": f"http://127.0.0.1:{pipeline.site.port}/backup/{{id}}",
            "selector": "img.artist-image",
        }
    )
    pipeline.config_path.write_text(yaml.safe_dump(config), encoding="utf-8")


def _serve_backup(pipeline: Pipeline, artist_id: int, image: bytes) -> None:
    pipeline.site.add_route(
        f"/backup-images/{artist_id}.jpg", body=image, headers={"Content-Type": "image/jpeg"}
    )
    pipeline.site.add_route(
        f"/backup/{artist_id}",
        body=f'<img class="artist-image" src="/backup-images/{artist_id}.jpg">'.encode(),
        headers={"Content-Type": "text/html"},
    )


def test_a_worse_image_is_kept_out_until_a_person_forces_it(pipeline: Pipeline) -> None:
    _add_backup_source(pipeline)
    pipeline.add_artist(1, "Nell", image=make_jpeg(1, (900, 900)))
    assert pipeline.run(["1"]).success
    big = pipeline.repository.current_images(["1"])["1"]
    # The first site loses the artist's page; the backup only has a smaller photo.
    pipeline.set_page(1, page_status=404)
    _serve_backup(pipeline, 1, make_jpeg(2, (300, 300)))

    kept = pipeline.run(["1"])

    assert kept.success
    assert "kept current: 900x900" in kept.materialized()["1"]["reason"].text
    assert pipeline.repository.current_images(["1"])["1"].sha256 == big.sha256

    forced = pipeline.run(["1"], force=True)

    assert forced.success
    now = pipeline.repository.current_images(["1"])["1"]
    assert (now.source_name, now.width) == ("backup-site", 300)
