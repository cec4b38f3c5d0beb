"""The ``amodal3d`` command. Each command's config is a library dataclass (field docstrings are its ``--help``);
``entrypoint`` parses it with tyro (``--config FILE`` loads a saved ``config.json`` first, flags override it), then
the command's ``main`` in :mod:`amodal3d.commands` works. A user mistake prints one line on stderr and exits 2
(``--debug`` shows the traceback)."""

from __future__ import annotations

import contextlib
import importlib
import io
import os
import re
import sys
import warnings
from dataclasses import dataclass

from amodal3d.core.errors import UserError

DESCRIPTION = "Occlusion-aware single-image-to-3D toolkit."


@dataclass(frozen=True)
class Command:
    config: str
    """``module:Class`` of the command's config dataclass."""
    main: str
    """``module:function`` that runs it."""
    summary: str


COMMANDS = {
    "render-scenes": Command("blender_scenes.generate:RenderScenesConfig", "amodal3d.commands:render_scenes",
                             "Render occluded object scenes with full amodal ground truth."),
    "make-shapes": Command("amodal3d.commands:MakeShapesConfig", "amodal3d.commands:make_shapes",
                           "Random procedural objects (textured with photo crops) for training renders."),
    "objects": Command("amodal3d.commands:ObjectsConfig", "amodal3d.commands:objects",
                       "List object assets with their categories and sizes."),
    "complete": Command("amodal3d.commands:CompleteConfig", "amodal3d.commands:complete",
                        "Complete a partly hidden object: whole-object samples, amodal mask, vote fraction."),
    "reconstruct": Command("amodal3d.commands:ReconstructConfig", "amodal3d.commands:reconstruct",
                           "Reconstruct a mesh from a completion (or an RGBA image of the whole object)."),
    "run": Command("amodal3d.run:RunConfig", "amodal3d.commands:run",
                   "The main job: prompt -> completion -> amodal mask -> mesh, with a page."),
    "eval": Command("amodal3d.commands:EvalConfig", "amodal3d.commands:evaluate",
                    "Score a mesh and/or ring views against a rendered scene (SyncDreamer's protocol)."),
    "bench": Command("amodal3d.bench.runner:BenchConfig", "amodal3d.commands:bench",
                     "The paper's tables over rendered scenes (resumable, parallel, HTML report)."),
    "bench-amodal": Command("amodal3d.bench.amodal:BenchAmodalConfig", "amodal3d.commands:bench_amodal",
                            "Table 1 on COCOA (COCO-A, BSDS-A), COCOA-cls, D2S amodal or KINS as released."),
    "bop": Command("amodal3d.commands:BopConfig", "amodal3d.commands:bop",
                   "Scenes to the BOP format (BlenderProc, BOP toolkit) and back (bop export / bop import)."),
    "recognize": Command("amodal3d.commands:RecognizeConfig", "amodal3d.commands:recognize",
                         "CLIP recognition of occluded objects before and after completion (Table 2)."),
    "make-pairs": Command("amodal3d.commands:MakePairsConfig", "amodal3d.commands:make_pairs",
                          "Whole-part training pairs in pix2gestalt's layout."),
    "train": Command("amodal3d.train:TrainConfig", "amodal3d.commands:train",
                     "Train the conditional diffusion completion model on whole-part pairs."),
    "train-segmenter": Command("amodal3d.train_segmenter:SegmenterTrainConfig", "amodal3d.commands:train_segmenter",
                               "Train the clicknet segmenter (clicks/box -> visible mask) on photos with masks."),
    "train-amodalnet": Command("amodal3d.train_amodalnet:AmodalNetTrainConfig", "amodal3d.commands:train_amodalnet",
                               "Train the amodalnet completer (photo + visible mask -> whole mask) on photos."),
    "convert-pix2gestalt": Command("amodal3d.commands:ConvertConfig", "amodal3d.commands:convert_pix2gestalt",
                                   "Convert the released pix2gestalt checkpoint to a diffusers folder."),
    "app": Command("amodal3d.app:AppConfig", "amodal3d.app:serve",
                   "A local web page: click the object, run, turn the mesh in 3D, download (or --run DIR)."),
    "weights": Command("amodal3d.commands:WeightsConfig", "amodal3d.commands:weights",
                       "Weights by name: list what is cached, download once (checksummed, resumable)."),
    "addon": Command("amodal3d.commands:AddonConfig", "amodal3d.commands:addon",
                     "Build the Blender add-on zip."),
    "demo": Command("amodal3d.commands:DemoConfig", "amodal3d.commands:demo",
                    "The main job on a bundled photo and a rendered scene, with contact sheets."),
}


def _load(path: str):
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


def usage() -> str:
    width = max(map(len, COMMANDS))
    lines = ["usage: amodal3d COMMAND [--config FILE] [OPTIONS] [--debug]", "", DESCRIPTION, "", "commands:"]
    lines += [f"  {name:{width}}  {command.summary}" for name, command in COMMANDS.items()]
    lines += ["", "`amodal3d COMMAND --help` lists a command's options with their defaults."]
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str]) -> tuple[str, object]:
    """(command name, its config) from ``argv``. ``--help`` prints the help and exits 0; a parse error exits 2 with
    one line (what is wrong, a suggestion, where the help is) instead of tyro's box."""

    from amodal3d.core.config import load_config

    if not argv or argv[0] in ("-h", "--help"):
        sys.stdout.write(usage())
        raise SystemExit(0 if argv else 2)
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        close = [c for c in COMMANDS if c.startswith(name[:2])]
        hint = f"; did you mean {close[0]}?" if close else ""
        print(f"amodal3d: error: unknown command '{name}'{hint} (commands: {', '.join(COMMANDS)})", file=sys.stderr)
        raise SystemExit(2)
    command = COMMANDS[name]
    cls = _load(command.config)
    default = None
    if "--config" in rest:
        at = rest.index("--config")
        if at + 1 >= len(rest):
            print("amodal3d: error: --config needs a file (a config.json amodal3d wrote)", file=sys.stderr)
            raise SystemExit(2)
        default = load_config(rest[at + 1], name, cls)
        rest = rest[:at] + rest[at + 2:]
    config, failed = quiet_cli(cls, rest, prog=f"amodal3d {name}", default=default,
                               description=(cls.__doc__ or command.summary).strip())
    if failed is not None:
        code, printed = failed
        if code in (0, None):  # --help
            sys.stdout.write(printed)
            raise SystemExit(code)
        print(f"amodal3d: error: {usage_error_line(printed)}", file=sys.stderr)
        raise SystemExit(2)
    return name, config


def quiet_cli(cls, args: list[str], **kwargs):
    """``tyro.cli(cls, args=args, **kwargs)`` with its printing caught: (config, None), or (None, (exit code, what
    tyro printed)) for --help or a bad argument."""
    import tyro

    buffer = io.StringIO()
    try:
        with contextlib.redirect_stderr(buffer), contextlib.redirect_stdout(buffer):
            return tyro.cli(cls, args=args, **kwargs), None
    except SystemExit as exc:
        return None, (exc.code, buffer.getvalue())


def usage_error_line(text: str) -> str:
    """tyro's error box (as printed without a terminal) -> one line."""
    lines = [line.strip(" \u2502\u256d\u256e\u2570\u256f") for line in text.splitlines()]
    sections: list[list[str]] = [[]]
    for line in lines:
        if line and set(line) <= set("-\u2500 "):
            sections.append([])
        elif line:
            sections[-1].append(line)
    sections = [s for s in sections if s]
    if not sections:
        return "invalid arguments (see amodal3d --help)"
    title, body = sections[0][0], sections[1] if len(sections) > 1 else []
    rest = [line for section in sections[2:] for line in section]
    message = " ".join(body) or title
    if title.startswith("Required options"):
        missing = [line.split()[0] for line in body if line.startswith("-")]
        message = f"missing {', '.join(missing)}" if missing else message
    message = message.split(" Got errors:")[0]
    parsed = re.match(r"Error parsing (\S+): (.*)", message)
    if parsed:
        metavar = next((line.split(None, 1)[1] for line in rest if line.startswith(parsed[1] + " ")), "")
        given = re.search(r"from \[(.*?)\]\.?$", parsed[2]) or \
            re.search(r"Could not parse arguments \[(.*?)\] into", parsed[2])  # a repeatable flag's wording
        reason = f"'{' '.join(v.strip(chr(39)) for v in given[1].split(', '))}'" if given else parsed[2]
        message = f"bad value for {parsed[1]}: {reason}" + (f" (expected {metavar})" if metavar else "")
    commands = next((line for line in rest if line.startswith("Available subcommands:")), "")
    if commands:
        message += "; " + " ".join(rest[rest.index(commands):]).split(" For full helptext")[0].lower()
    suggestion = next((rest[i + 1].split()[0] for i, line in enumerate(rest[:-1]) if line == "Perhaps you meant:"), "")
    if suggestion:
        message += f"; did you mean {suggestion}?"
    helps = re.findall(r"(amodal3d(?: [\w-]+)? --help)", text)
    return message + f" (see {helps[-1]})" if helps else message


def entrypoint(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    argv = [a for a in argv if a != "--debug"]
    if len(argv) >= 2 and argv[0] == "run" and not argv[1].startswith("-"):
        argv.insert(1, "--image")  # `amodal3d run photo.jpg --point X Y` (DESIGN.md)
    if not debug:  # the promise is one line: library warnings are not for the user (--debug shows them)
        warnings.simplefilter("ignore")
        os.environ["PYTHONWARNINGS"] = "ignore"  # worker processes too
    try:
        try:
            name, config = parse_args(argv)
        except SystemExit as exc:
            return int(exc.code or 0)
        return _load(COMMANDS[name].main)(config)
    except UserError as exc:
        if debug:
            raise
        print(f"amodal3d: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("amodal3d: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # anything else is a bug: one line unless --debug
        if debug:
            raise
        print(f"amodal3d: internal error: {type(exc).__name__}: {exc} (rerun with --debug for the traceback)",
              file=sys.stderr)
        return 1


def main() -> None:
    sys.exit(entrypoint())


if __name__ == "__main__":
    main()
