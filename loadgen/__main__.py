from loadgen.app.entry import main

main()
