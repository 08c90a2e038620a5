"""Documents to fax pages, and received faxes to PNG: what the fax feature sends and shows.

``document_pages(path)`` turns a file a user wants to fax into bitonal A4 pages
(``dsp.fax.tiff.FaxPage``), choosing by the file's content where its first bytes
tell (a renamed file still works; random bytes called .doc are refused, which
LibreOffice would otherwise print as text) and by its suffix otherwise:

- plain text (UTF-8, UTF-8 with BOM, UTF-16 with BOM, GB18030/GBK): drawn with the
  Noto CJK font (``appliance.faxrender``);
- PDF: Ghostscript renders each page straight at 204 x 196 (or 98) dpi to 1 bit
  per pixel, the page scaled to fit a 1728 x A4 sheet and centred (a page longer
  than A4 is scaled down whole, not cropped: nothing is lost, it prints smaller);
- Word, Excel, OpenDocument, RTF: LibreOffice headless to PDF, then as PDF;
- pictures: fitted to the width, thresholded (dithered if a photograph), cut
  into A4-long pages;
- a TIFF-F fax (T.4 compressed): its pages as they are.

Each call works in a private temporary folder (under ``workdir``) that is removed
afterwards, LibreOffice with its own profile there so calls can run in parallel.
Errors: ``DspError`` when the file is at fault (missing, empty, unknown type,
damaged, password-protected, refused by the converter); ``DriverError`` when a
converter program is missing or does not finish in time. Each message starts
with the file's name.
"""

from __future__ import annotations

import os
import pathlib
import shutil
import signal
import subprocess
import tempfile
import zipfile

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from appliance.errors import DriverError, DspError
from appliance.faxrender import (decode_text, page_rows, picture_pages, render_png, text_pages,
                                 tiff_to_pngs)
from dsp.fax.t4 import A4_WIDTH
from dsp.fax.tiff import FINE_LPI, STANDARD_LPI, X_DPI, FaxPage, read_tiff_f

__all__ = ["document_pages", "render_png", "tiff_to_pngs", "OFFICE_SUFFIXES", "IMAGE_SUFFIXES"]

SOFFICE = "soffice"
GHOSTSCRIPT = "gs"
OFFICE_SUFFIXES = (".docx", ".doc", ".xlsx", ".xls", ".odt", ".ods", ".rtf")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff")
TEXT_SUFFIXES = (".txt", ".text")
MAX_TEXT_BYTES = 4 << 20
_OLE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # Word 97-2003 .doc and Excel .xls
_IMAGE_MAGIC = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF87a", b"GIF89a", b"BM")
_ODF = {"application/vnd.oasis.opendocument.text": ".odt",
        "application/vnd.oasis.opendocument.spreadsheet": ".ods"}


def document_pages(path: str | os.PathLike, *, fine: bool = True, workdir: str | os.PathLike | None = None,
                   timeout_s: float = 120.0, max_pages: int = 100) -> list[FaxPage]:
    """The fax pages of a document.

    Parameters
    ----------
    path : str or PathLike
        .txt, .pdf, .docx, .doc, .xlsx, .xls, .odt, .ods, .rtf, .png, .jpg, .jpeg,
        .bmp, .gif, .tif/.tiff, or a TIFF-F fax.
    fine : bool
        204 x 196 dpi (2287 rows an A4 page); else standard 204 x 98 (1143 rows).
        A TIFF-F fax keeps its own resolution.
    workdir : str or PathLike, optional
        Where the temporary folder goes (default: the system's); it is removed afterwards.
    timeout_s : float
        Longest each converter run (LibreOffice, Ghostscript) may take.
    max_pages : int
        More pages than this is refused rather than filling memory (about 4 MB a fine page).

    Returns
    -------
    list of FaxPage
        Pixels (rows, 1728) bool, True = black; at least one page.

    Raises
    ------
    DspError
        Missing, empty, unknown type, damaged or password-protected file, or a
        converter refused it; the message starts with the file's name and says why.
    DriverError
        LibreOffice or Ghostscript is not installed or did not finish within ``timeout_s``, or
        the temporary folder cannot be made or written.
    """
    src = os.fspath(path)
    name = os.path.basename(src) or src
    head = _head(src, name)
    kind = _kind(src, name, head)
    if kind == "text":
        with open(src, "rb") as f:
            data = f.read(MAX_TEXT_BYTES + 1)
        if len(data) > MAX_TEXT_BYTES:  # some 10 000 pages: refuse before drawing any
            raise DspError(f"{name}: {os.path.getsize(src)} bytes of text is too long for a fax")
        return _limit(text_pages(decode_text(data, name), fine=fine), name, max_pages)
    if kind == "image":
        return _limit(_image_pages(src, name, fine), name, max_pages)
    if kind == "fax":
        try:
            return _limit(read_tiff_f(src), name, max_pages)
        except DspError as e:
            raise DspError(f"{name}: the fax TIFF is damaged: {str(e).replace(src, '').lstrip(': ')}") from None
    try:
        tmp = tempfile.mkdtemp(prefix="faxdocs-", dir=None if workdir is None else os.fspath(workdir))
    except OSError as e:
        raise DriverError(f"{name}: cannot make a temporary folder in {workdir or tempfile.gettempdir()}: "
                          f"{e.strerror or e}") from None
    try:
        # a private copy with a plain name: the converters see no odd characters, LibreOffice the right suffix
        work = os.path.join(tmp, "input" + kind)
        try:
            shutil.copyfile(src, work)
        except OSError as e:
            raise DriverError(f"{name}: cannot copy it to the temporary folder {tmp}: {e.strerror or e}") from None
        if kind != ".pdf":
            work = _office_to_pdf(work, name, tmp, timeout_s)
        return _pdf_pages(work, name, tmp, fine, timeout_s, max_pages)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _limit(pages: list[FaxPage], name: str, max_pages: int) -> list[FaxPage]:
    if len(pages) > max_pages:
        raise DspError(f"{name}: {len(pages)} pages, more than the {max_pages} a fax may have")
    return pages


def _head(src: str, name: str) -> bytes:
    try:
        if not os.path.isfile(src):
            raise DspError(f"{name}: no such file" if not os.path.exists(src) else f"{name}: not a regular file")
        with open(src, "rb") as f:
            head = f.read(4096)
    except OSError as e:
        raise DspError(f"{name}: cannot read the file: {e.strerror or e}") from None
    if not head:
        raise DspError(f"{name}: the file is empty")
    return head


def _kind(src: str, name: str, head: bytes) -> str:
    """"text", "image", "fax", or the suffix a converter should see (".pdf", ".docx", ...)."""
    suffix = os.path.splitext(src)[1].lower()
    # some generators put junk before the header and readers allow 1 KB of it; only trust that for a .pdf
    if head.startswith(b"%PDF-") or (suffix == ".pdf" and b"%PDF-" in head[:1024]):
        return ".pdf"
    if head[:4] in (b"II*\0", b"MM\0*"):
        return _tiff_kind(src, name)
    if head.startswith(_IMAGE_MAGIC):
        return "image"
    if head.startswith(b"PK\x03\x04"):
        return _zip_kind(src, name, suffix)
    if head.startswith(_OLE):
        return _ole_kind(src, name, suffix)
    if head.startswith(b"{\\rtf"):
        return ".rtf"
    if suffix in TEXT_SUFFIXES or (not suffix and b"\0" not in head):
        return "text"
    if suffix in OFFICE_SUFFIXES + IMAGE_SUFFIXES + (".pdf",):
        raise DspError(f"{name}: not a valid {suffix} file (its content does not start like one: {head[:8]!r})")
    allowed = ", ".join((".txt", ".pdf") + OFFICE_SUFFIXES + IMAGE_SUFFIXES)
    raise DspError(f"{name}: unknown file type {suffix or '(no suffix)'}; a fax can be made of {allowed}")


def _tiff_kind(src: str, name: str) -> str:
    try:
        with Image.open(src) as img:
            compression = img.tag_v2.get(259, 1)
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError) as e:
        raise DspError(f"{name}: the TIFF file is damaged: {e}") from None
    return "fax" if compression == 3 else "image"  # 3: T.4 (Group 3 fax); anything else is a picture


def _ole_kind(src: str, name: str, suffix: str) -> str:
    # a password-protected .docx/.xlsx is an OLE file holding an "EncryptedPackage" stream
    with open(src, "rb") as f:
        if "EncryptedPackage".encode("utf-16-le") in f.read(64 << 20):
            raise DspError(f"{name}: the document is password-protected; remove the password and send it again")
    return ".xls" if suffix in (".xls", ".xlsx", ".ods") else ".doc"  # LibreOffice checks the content anyway


def _zip_kind(src: str, name: str, suffix: str) -> str:
    try:
        with zipfile.ZipFile(src) as z:
            names = set(z.namelist())
            mimetype = z.read("mimetype").decode("ascii", "replace").strip() if "mimetype" in names else ""
            bad = z.testzip()
    except (zipfile.BadZipFile, OSError, EOFError, RuntimeError, ValueError) as e:
        raise DspError(f"{name}: the {suffix or 'ZIP'} file is damaged (not a readable ZIP archive: {e})") from None
    if bad is not None:
        raise DspError(f"{name}: the {suffix or 'ZIP'} file is damaged (member {bad} fails its checksum)")
    if "word/document.xml" in names:
        return ".docx"
    if "xl/workbook.xml" in names:
        return ".xlsx"
    if mimetype in _ODF:
        return _ODF[mimetype]
    raise DspError(f"{name}: a ZIP archive but not a Word, Excel or OpenDocument text/spreadsheet file")


def _image_pages(src: str, name: str, fine: bool) -> list[FaxPage]:
    pages: list[FaxPage] = []
    try:
        with Image.open(src) as img:
            # a multi-page TIFF is a document: every frame; an animated GIF is a picture: its first frame
            frames = getattr(img, "n_frames", 1) if img.format == "TIFF" else 1
            if img.format == "JPEG":  # decode a big photo at 1/2, 1/4 or 1/8 scale: quicker, less memory
                img.draft("L", (A4_WIDTH, A4_WIDTH))
            for i in range(frames):
                img.seek(i)
                img.load()
                pages += picture_pages(ImageOps.exif_transpose(img), name, fine=fine)
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise DspError(f"{name}: the picture cannot be read: {e}") from None
    return pages


def _run(argv: list[str], name: str, tool: str, timeout_s: float, cwd: str) -> tuple[int, str]:
    """Run a converter in its own process group (LibreOffice starts children); (exit status, stderr+stdout)."""
    exe = shutil.which(argv[0])
    if exe is None:
        raise DriverError(f"{name}: {tool} ({argv[0]}) is not installed, so this file cannot be converted")
    env = dict(os.environ, HOME=cwd, LC_ALL="C.UTF-8")  # nothing written to the real home; UTF-8 file names
    try:
        proc = subprocess.Popen([exe, *argv[1:]], cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    except OSError as e:
        raise DriverError(f"{name}: {tool} ({exe}) cannot be started: {e.strerror or e}") from None
    try:
        out, err = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        _kill(proc)
        raise DriverError(f"{name}: {tool} did not finish within {timeout_s:g} s") from None
    except BaseException:
        _kill(proc)
        raise
    return proc.returncode, (err + out).decode("utf-8", "replace")


def _kill(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.communicate()


def _reason(text: str) -> str:
    """The lines of a converter's chatter that say something, joined, at most 300 characters."""
    noise = ("javaldx", "Output may be incorrect", "GPL Ghostscript")
    lines = [ln.strip(" *\t") for ln in text.splitlines()]
    lines = [ln for ln in lines if ln and not ln.startswith("convert ") and not any(n in ln for n in noise)]
    return ("; ".join(lines) or "no explanation given")[:300]


def _office_to_pdf(work: str, name: str, tmp: str, timeout_s: float) -> str:
    profile = pathlib.Path(tmp, "profile").as_uri()
    out_dir = os.path.join(tmp, "pdf")
    argv = [SOFFICE, f"-env:UserInstallation={profile}", "--headless", "--norestore", "--nologo",
            "--nolockcheck", "--convert-to", "pdf", "--outdir", out_dir, work]
    status, chatter = _run(argv, name, "LibreOffice", timeout_s, tmp)
    pdf = os.path.join(out_dir, "input.pdf")
    if status != 0 or not os.path.isfile(pdf) or os.path.getsize(pdf) == 0:
        why = _reason(chatter)
        if "could not be loaded" in why:
            why += " (damaged, password-protected or not really this type)"
        raise DspError(f"{name}: LibreOffice could not convert it: {why}")
    return pdf


def _pdf_pages(pdf: str, name: str, tmp: str, fine: bool, timeout_s: float, max_pages: int) -> list[FaxPage]:
    rows, lpi = page_rows(fine), (FINE_LPI if fine else STANDARD_LPI)
    out_dir = os.path.join(tmp, "pages")
    os.mkdir(out_dir)
    # FIXEDMEDIA + PDFFitPage: every page scaled to fit 1728 x A4 at the fax resolution and centred
    argv = [GHOSTSCRIPT, "-q", "-dNOPAUSE", "-dBATCH", "-dSAFER", "-sDEVICE=pbmraw", f"-r{X_DPI}x{lpi}",
            f"-g{A4_WIDTH}x{rows}", "-dFIXEDMEDIA", "-dPDFFitPage", "-dFirstPage=1", f"-dLastPage={max_pages + 1}",
            f"-sOutputFile={os.path.join(out_dir, 'p%05d.pbm')}", "-f", pdf]
    status, chatter = _run(argv, name, "Ghostscript", timeout_s, tmp)
    files = sorted(os.listdir(out_dir))
    if "requires a password" in chatter:
        raise DspError(f"{name}: the PDF is password-protected; remove the password and send it again")
    if status != 0 or not files:
        raise DspError(f"{name}: the PDF is damaged; Ghostscript could not render it: {_reason(chatter)}")
    if len(files) > max_pages:
        raise DspError(f"{name}: more than the {max_pages} pages a fax may have")
    pages = []
    for f in files:
        with Image.open(os.path.join(out_dir, f)) as img:
            pix = ~np.asarray(img.convert("1"))  # PBM via Pillow: True = white
        pages.append(FaxPage(pix, X_DPI, lpi))
    # Ghostscript repairs what it can; errors and nothing on any page mean there was nothing to repair
    if "Error" in chatter and not any(p.pixels.any() for p in pages):
        raise DspError(f"{name}: the PDF is damaged; its pages render blank: {_reason(chatter)}")
    return pages
