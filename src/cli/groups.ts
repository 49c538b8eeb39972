/** Help headings, grouped like minikube's so its users find their way. */
export const GROUP_BASIC = 'Basic Commands:';
export const GROUP_IMAGES = 'Images Commands:';
export const GROUP_CONFIG = 'Configuration and Management Commands:';
export const GROUP_TROUBLESHOOTING = 'Troubleshooting Commands:';
export const GROUP_OTHER = 'Other Commands:';
