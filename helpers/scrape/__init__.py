"""Build an image data set from the web, politely and safely: search back ends, one downloader, a manifest.

Every source (DuckDuckGo, Bing, Google, Instagram, a URL list, a local folder)
only produces `Candidate(url, source, query)`. Everything that touches the
network or the disk happens in `download()`, so every source gets the same
protection:

- politeness: robots.txt (cached per host), a per-host rate limit, an honest
  User-Agent, retries with back-off only for errors that may go away;
- safety: http(s) only (also after redirects, which are limited), no private,
  loopback, link-local or reserved addresses (checked on the address we really
  connect to, on every hop, unless `allow_private=True`), time-outs for
  connect, silence and the whole body, a byte cap enforced while reading,
  file names made from the content's SHA-256 (the server cannot choose them);
- quality: content type and magic bytes checked, every image really decoded,
  EXIF orientation applied, grey/CMYK/alpha turned into RGB, a minimum size,
  exact and near duplicates (pHash) removed across the whole domain folder;
- bookkeeping: one `manifest.csv` row per URL, appended as soon as it is
  known, so an interrupted run loses nothing and a re-run skips what it knows.
  Ctrl-C stops the run within a few seconds: connections in flight are cut,
  and a URL that did not finish gets no row, so the next run fetches it.

`local_image_server(folder)` serves a folder on 127.0.0.1 so the notebook
(and its tests) can run the real downloader without the web; they pass
`allow_private=True` for it, and the manifest's `address` column says so.

One concern per module, re-exported here (`from helpers.scrape import download`):

    config.py      DownloadConfig, the statuses a URL can end in, Skip
    sources.py     search back ends and other sources -> Candidate(url, source, query)
    guard.py       the private-address guard every connection goes through
    fetch.py       one URL within the limits (redirects, time-outs, byte cap, retries)
    polite.py      per-host rate limit and robots.txt
    image.py       magic numbers, a real decode, an atomic JPEG save
    manifest.py    manifest.csv: append, read, count, the status table
    downloader.py  download(): the driver, threads, Ctrl-C
    local.py       the 127.0.0.1 server and the sample-video frames for offline runs
    lesson.py      the pictures of lesson 01 (sources, statuses, the re-run)
"""

from .config import (  # noqa: F401
    CHUNK,
    IMAGE_EXTENSIONS,
    LOCAL_HOSTS,
    STATUSES,
    TRANSIENT,
    USER_AGENT,
    DownloadConfig,
    Skip,
    offline,
)
from .downloader import STOP_GRACE_S, ScrapeReport, download  # noqa: F401
from .guard import RefusedAddress, address_refusal  # noqa: F401
from .image import decode_image, sniff, square_thumbnails  # noqa: F401
from .lesson import kept_grids, plot_rerun, plot_sources, plot_statuses  # noqa: F401
from .local import (  # noqa: F401
    SAMPLE_DOMAINS,
    SAMPLE_VIDEOS,
    LocalImageServer,
    export_frames,
    local_image_server,
    serve_sample_frames,
)
from .manifest import (  # noqa: F401
    MANIFEST,
    MANIFEST_COLUMNS,
    first_failures,
    kept_images,
    latest_rows,
    manifest_counts,
    read_manifest,
    status_table,
)
from .polite import HostLimiter, RobotsCache  # noqa: F401
from .sources import (  # noqa: F401
    SEARCH_BACKENDS,
    Candidate,
    SearchError,
    from_folder,
    from_url_list,
    search,
    search_bing,
    search_duckduckgo,
    search_google,
    search_instagram,
    search_many,
    web_reachable,
)
