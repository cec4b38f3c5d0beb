from amodal3d.cli import main

main()
