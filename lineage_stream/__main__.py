from lineage_stream.cli import main

main()
