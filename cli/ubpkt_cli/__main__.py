from ubpkt_cli.main import main

main()
