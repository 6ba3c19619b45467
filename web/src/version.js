// The package version, shown in the app and written into reports (a test keeps it
// equal to package.json's).
export const VERSION = '0.1.0';
