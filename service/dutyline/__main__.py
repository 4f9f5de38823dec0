from dutyline.cli import main

main()
