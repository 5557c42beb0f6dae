"""Git for projects: providers and their token conventions, and repository operations that never
write a token anywhere."""
