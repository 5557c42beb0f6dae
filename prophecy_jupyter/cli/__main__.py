from prophecy_jupyter.cli.main import main

main()
