"""Sphinx configuration of the sknet documentation.

Build it from the root of the repository with::

    pip install -e ".[docs]"
    sphinx-build -W --keep-going -b html docs docs/_build/html

The build runs every example of ``examples/`` (sphinx-gallery) and treats
every warning as an error.
"""

import os
import re
import shutil
from pathlib import Path

import sknet

HERE = Path(__file__).resolve().parent
EXAMPLES = HERE.parent / "examples"
# sphinx-gallery runs each example in the folder that holds it, and the
# examples save their figures in their working directory. Running a copy kept
# under _build (which git ignores) keeps those PNG files out of examples/.
STAGED_EXAMPLES = HERE / "_build" / "gallery_src"
shutil.rmtree(STAGED_EXAMPLES, ignore_errors=True)
shutil.copytree(
    EXAMPLES,
    STAGED_EXAMPLES,
    ignore=shutil.ignore_patterns("*.png", "__pycache__", ".*"),
)
# No display: every figure is drawn off screen.
os.environ.setdefault("MPLBACKEND", "Agg")

# -- Project -----------------------------------------------------------------

project = "sknet"
author = "the sknet developers"
copyright = "the sknet developers"
version = release = sknet.__version__

# -- General -----------------------------------------------------------------

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    # A copy of MathJax in the built pages, so equations render offline.
    "sphinx-mathjax-offline",
    "sphinx.ext.viewcode",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]

templates_path = ["_templates"]
exclude_patterns = ["_build", "README.md", "**.ipynb_checkpoints"]
root_doc = "index"
default_role = "literal"
pygments_style = "sphinx"

# -- API reference (autodoc, autosummary, numpydoc) --------------------------

autosummary_generate = True
autosummary_imported_members = True
autodoc_default_options = {
    "members": True,
    # scikit-learn generates these from the signature of fit and score; its
    # base classes document them.
    "exclude-members": "set_fit_request, set_partial_fit_request, set_score_request",
}
autodoc_inherit_docstrings = True
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False

# -- Examples gallery (sphinx-gallery) ---------------------------------------

sphinx_gallery_conf = {
    "examples_dirs": str(STAGED_EXAMPLES),
    "gallery_dirs": "auto_examples",
    # Run every plot_*.py example on every build, whether or not it changed.
    "filename_pattern": r"/plot_",
    "run_stale_examples": True,
    "abort_on_example_error": False,
    "only_warn_on_example_error": False,
    "within_subsection_order": "FileNameSortKey",
    "doc_module": ("sknet",),
    "backreferences_dir": "generated/backreferences",
    "reference_url": {"sknet": None},
    "download_all_examples": False,
    "remove_config_comments": True,
    "min_reported_time": 1,
    "write_computation_times": False,
}

# -- HTML --------------------------------------------------------------------

html_theme = "pydata_sphinx_theme"
html_title = f"sknet {release}"
html_theme_options = {
    "navbar_align": "left",
    "show_toc_level": 2,
    "secondary_sidebar_items": ["page-toc"],
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version", "theme-version"],
}
html_sidebars = {"index": [], "install": [], "quickstart": [], "changelog": []}
html_show_sourcelink = False


# -- Docstring fix-ups -------------------------------------------------------

# In reStructuredText a word that ends in "_" is a link, so a type such as
# "ndarray of shape (n_features_in_,)" makes docutils look for a link target
# named "n_features_in". Quote such attribute names as literals before
# numpydoc renders the docstring.
_TRAILING_UNDERSCORE = re.compile(r"(?<![`\w])([A-Za-z]\w*_)(?=[,)])")


def _quote_attribute_names(app, what, name, obj, options, lines):
    for i, line in enumerate(lines):
        if "of shape" in line:
            lines[i] = _TRAILING_UNDERSCORE.sub(r"``\1``", line)


def setup(app):
    # Before numpydoc's own handler (priority 500).
    app.connect("autodoc-process-docstring", _quote_attribute_names, priority=100)
