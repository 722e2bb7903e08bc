# frozen_string_literal: true

require_relative "lib/process_shared/version"

Gem::Specification.new do |spec|
  spec.name = "process_shared"
  spec.version = ProcessShared::VERSION
  spec.authors = ["process_shared authors"]
  spec.license = "MIT"
  spec.summary = "Cross-process mutexes, semaphores, condition variables and shared memory for Ruby"
  spec.description = <<~DESC
    Synchronisation primitives that work across fork()ed and unrelated processes: mutexes,
    semaphores, condition variables and shared memory regions, implemented in Rust
    (magnus + rb-sys) on futexes over shared memory. Building needs a Rust toolchain (cargo).
  DESC
  spec.required_ruby_version = ">= 3.1"
  spec.extensions = ["ext/process_shared/extconf.rb"]
  spec.require_paths = ["lib"]
  spec.bindir = "exe"
  spec.executables = ["process_shared"] # the operator's command: list, inspect, unlink named objects
  spec.metadata["rubygems_mfa_required"] = "true"

  # What the gem needs to build and run: Ruby sources, the command, both crates, the workspace manifest and
  # its lock file (the build uses --locked), the RBS signatures (sig/) and the docs the README links.
  # Never target/ or a compiled .so.
  patterns = %w[lib/**/*.rb exe/* sig/**/*.rbs ext/**/*.{rs,rb,toml} Cargo.toml Cargo.lock README.md docs/*.md
                LICENSE]
  flags = File::FNM_PATHNAME | File::FNM_EXTGLOB
  in_git = File.exist?(File.join(__dir__, ".git")) && system("git", "--version", out: File::NULL, err: File::NULL)
  files =
    if in_git
      # --others --exclude-standard: new files count before their first commit; ignored ones never.
      git = %w[git ls-files -z --cached --others --exclude-standard]
      IO.popen(git, chdir: __dir__, &:read).split("\x0")
    else
      Dir.glob(patterns, base: __dir__)
    end
  spec.files = files.select { |f| patterns.any? { |p| File.fnmatch?(p, f, flags) } }
                    .select { |f| File.file?(File.join(__dir__, f)) } # drop deleted-but-tracked files
                    .reject { |f| f.match?(%r{(\A|/)target/}) }
                    .sort
end
