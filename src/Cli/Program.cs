return Microscale.Cli.CliApp.Build().Parse(args).Invoke();
