from lyceum.cli import main

main()
