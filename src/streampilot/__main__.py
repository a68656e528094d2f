from streampilot.cli import main

main()
